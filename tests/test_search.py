"""Free-text search: ranking, prefixes, user text that looks like FTS5 syntax, kinds, accents."""

from __future__ import annotations

from ai4kg.graph.search import FacetQuery, SearchDocument, SearchIndex, match_expression


def _index() -> SearchIndex:
    index = SearchIndex(None)
    index.apply([
        SearchDocument("urn:a", "Module", title="Plankton classifier", description="images of the sea"),
        SearchDocument("urn:b", "Module", title="Sea ice forecaster", description="mentions plankton once"),
        SearchDocument("urn:c", "Tool", title="Café explorer", tags="notebook | jupyter"),
    ])
    return index


def test_title_matches_rank_above_description_matches() -> None:
    assert [hit.iri for hit in _index().search("plankton", None)] == ["urn:a", "urn:b"]


def test_every_word_must_match_and_the_last_may_be_a_prefix() -> None:
    index = _index()
    assert [hit.iri for hit in index.search("sea forec", None)] == ["urn:b"]
    assert index.search("plankton jupyter", None) == []


def test_fts_syntax_in_user_text_is_plain_words() -> None:
    index = _index()
    for text in ('"', "AND", "plankton OR", "NEAR(a b)", "col:plankton", "*", "(", "title: sea"):
        index.search(text, None)  # must not raise
    assert match_expression('x" OR "y') == '"x" "OR" "y"*'
    assert match_expression("  ") is None


def test_kind_filter_and_accents() -> None:
    index = _index()
    assert [hit.iri for hit in index.search("cafe", None)] == ["urn:c"]
    assert index.search("cafe", None, kind="Module") == []
    assert [hit.iri for hit in index.search("jupyter", None, kind="Tool")] == ["urn:c"]


def test_apply_replaces_and_removes() -> None:
    index = _index()
    index.apply([SearchDocument("urn:a", "Module", title="Diatom counter")], removed=["urn:b"])
    assert index.search("plankton", None) == []
    assert [hit.iri for hit in index.search("diatom", None)] == ["urn:a"]
    assert index.count() == 2


def test_an_index_of_another_version_is_rebuilt_from_the_store(tmp_path) -> None:
    import sqlite3

    from ai4kg.catalog import import_files
    from ai4kg.config import Settings
    from ai4kg.graph.store import KnowledgeGraph

    from conftest import MODULES

    settings = Settings(data_dir=tmp_path / "data")
    with KnowledgeGraph(settings) as graph:
        import_files(graph, [MODULES / "ai4os-yolo-torch__ai4-metadata.yml"])
    db = sqlite3.connect(tmp_path / "data" / "search.sqlite")
    db.execute("PRAGMA user_version = 1")
    db.execute("DELETE FROM facets")
    db.commit()
    db.close()
    with KnowledgeGraph(settings) as graph:
        assert [hit.iri.rsplit("/", 1)[-1] for hit in graph.search("yolo")] == ["ai4os-yolo-torch"]
        assert graph.index.filter(FacetQuery("Module", None, all_of=(("task", "computer-vision"),))).iris


def test_facet_filters_and_keyset_pages() -> None:
    index = SearchIndex(None)
    index.apply([
        SearchDocument(f"urn:{n}", "Module", identifier=f"m{n}", created=f"2024-01-0{n}",
                       facets=tuple([("tag", "deep"), ("task", "regression" if n % 2 else "classification")]
                                    + ([("tag", "sea")] if n < 3 else [])))
        for n in range(1, 7)
    ])
    ids = lambda q: [iri[4:] for iri in index.filter(q).iris]  # noqa: E731
    assert ids(FacetQuery("Module", None, all_of=(("tag", "deep"), ("tag", "sea")))) == ["1", "2"]
    assert ids(FacetQuery("Module", None, any_of=(("task", ("regression",)),))) == ["1", "3", "5"]
    assert ids(FacetQuery("Module", None, none_of=(("tag", ("sea",)),), sort="created", descending=True)) == ["6", "5", "4", "3"]
    assert ids(FacetQuery("Module", None, not_all_of=(("tag", ("deep", "sea")),))) == ["3", "4", "5", "6"]
    assert ids(FacetQuery("Tool", None)) == []
    first = index.filter(FacetQuery("Module", None, limit=4))
    assert [i[4:] for i in first.iris] == ["1", "2", "3", "4"] and first.next_after == ("m4", "urn:4")
    second = index.filter(FacetQuery("Module", None, limit=4, after=first.next_after))
    assert [i[4:] for i in second.iris] == ["5", "6"] and second.next_after is None


def _generation(g: int, size: int = 30) -> list[SearchDocument]:
    return [SearchDocument(f"urn:{g}:{n}", "Module", title=f"generation{g} plankton", identifier=f"{g:04d}-{n:02d}",
                           facets=(("tag", f"gen{g}"),)) for n in range(size)]


def test_reads_run_beside_a_write_and_see_only_committed_states(tmp_path) -> None:
    """On disk, readers have connections of their own: a write in progress neither blocks them nor
    shows them a half-applied transaction, and a write from another thread is seen once committed."""
    import threading

    index = SearchIndex(tmp_path / "search.sqlite")
    index.apply(_generation(0))
    with index._transaction():  # a write holds the write lock and SQLite's write transaction
        index._db.execute("DELETE FROM documents")
        answers: list[object] = []
        reader = threading.Thread(target=lambda: answers.extend(
            [index.count(), len(index.filter(FacetQuery("Module", None, limit=100)).iris),
             len(index.search("plankton", None, limit=100))]))
        reader.start()
        reader.join(timeout=10)
        assert not reader.is_alive(), "a read waited for the write"
        assert answers == [30, 30, 30]  # the last committed state, not the uncommitted delete
        index._db.execute("ROLLBACK")
        index._db.execute("BEGIN IMMEDIATE")  # what _transaction's COMMIT then ends
    assert index.count() == 30
    writer = threading.Thread(target=lambda: index.apply(_generation(1), removed=[d.iri for d in _generation(0)]))
    writer.start()
    writer.join()
    assert [iri.split(":")[1] for iri in index.filter(FacetQuery("Module", None, limit=100)).iris] == ["1"] * 30
    index.close()


def test_concurrent_readers_and_a_writer(tmp_path) -> None:
    """Eight threads read while generations of documents replace each other: every read sees
    exactly one whole generation, and nothing fails (no 'database is locked', no shared cursor)."""
    import threading

    index = SearchIndex(tmp_path / "search.sqlite")
    index.apply(_generation(0))
    done = threading.Event()
    problems: list[str] = []

    def read() -> None:
        while not done.is_set():
            try:
                page = index.filter(FacetQuery("Module", None, limit=100))
                hits = index.search("plankton", None, limit=100)
                for iris in (page.iris, [h.iri for h in hits]):
                    generations = {iri.split(":")[1] for iri in iris}
                    if len(iris) != 30 or len(generations) != 1:
                        problems.append(f"{len(iris)} documents of generations {sorted(generations)}")
            except Exception as exc:  # noqa: BLE001 - reported below
                problems.append(repr(exc))

    readers = [threading.Thread(target=read) for _ in range(8)]
    for thread in readers:
        thread.start()
    try:
        for g in range(1, 25):
            index.apply(_generation(g), removed=[d.iri for d in _generation(g - 1)])
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert problems == []
    assert index.count() == 30 and index.filter(FacetQuery("Module", None, all_of=(("tag", "gen24"),))).iris
    assert len(index._idle) <= SearchIndex.POOL_SIZE
    index.close()
    assert index._idle == []


def test_an_in_memory_index_serves_threads_on_its_one_connection() -> None:
    import threading

    index = _index()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.extend(len(index.search("plankton", None)) for _ in range(50)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    index.apply([SearchDocument("urn:d", "Module", title="More plankton")])
    for thread in threads:
        thread.join()
    assert set(results) <= {2, 3} and len(results) == 200
    assert len(index.search("plankton", None)) == 3


def test_facet_counts_agree_with_the_listing_and_show_chosen_values(real) -> None:
    """Counts of each facet value among the matching modules, checked against a listing per value;
    a chosen value outside the most frequent is shown with its count; a write is counted at once."""
    index = real.index
    fields = ["task", "library", "tag", "vo"]
    everything = FacetQuery(kind="Module", readers=frozenset(), limit=1000)
    pytorch = FacetQuery(kind="Module", readers=frozenset(), any_of=(("library", ("pytorch",)),), limit=1000)
    for query in (everything, pytorch):
        total, counts = index.facet_counts(query, fields, most=3)
        assert total == len(index.filter(query).iris) > 0
        for field in ("task", "library", "tag"):
            assert 0 < len(counts[field]) <= 3
            assert [n for _, n in counts[field]] == sorted((n for _, n in counts[field]), reverse=True)
            for value, n in counts[field]:
                narrowed = FacetQuery(kind="Module", readers=frozenset(), limit=1000,
                                      any_of=(*query.any_of, (field, (value,))))
                assert n == len(index.filter(narrowed).iris), (field, value)
        assert counts["vo"] == [("default", total)]
    rare_tag, rare_count = min(index.facet_values("tag", frozenset()), key=lambda entry: (entry[1], entry[0]))
    _, counts = index.facet_counts(everything, ["tag"], most=2, chosen={"tag": (rare_tag,)})
    assert len(counts["tag"]) == 3 and counts["tag"][-1] == (rare_tag, rare_count)
    # remembered counts are forgotten when the index changes
    from ai4kg.catalog import ImportOptions, InlineFile, import_files

    before, _ = index.facet_counts(pytorch, fields)
    module = (b"metadata_version: 2.0.0\ntitle: Counted at once\nsummary: A module written after the counts were "
              b"remembered.\ndescription: x\ndates: {created: '2024-01-02', updated: '2024-02-03'}\nlinks: "
              b"{source_code: 'https://github.com/example/counted', docker_image: example/counted}\n"
              b"tags: [deep learning]\ntasks: [Computer Vision]\ncategories: [AI4 pre trained]\n"
              b"libraries: [PyTorch]\ndata-type: [Image]\n")
    [report] = import_files(real, [InlineFile("counted.yml", module)], ImportOptions(identifier="counted"))
    assert report.status == "imported", report
    assert index.facet_counts(pytorch, fields)[0] == before + 1
