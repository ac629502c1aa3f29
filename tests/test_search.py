"""Free-text search: ranking, prefixes, user text that looks like FTS5 syntax, kinds, accents."""

from __future__ import annotations

from ai4kg.graph.search import SearchDocument, SearchIndex, match_expression


def _index() -> SearchIndex:
    index = SearchIndex(None)
    index.apply([
        SearchDocument("urn:a", "Module", title="Plankton classifier", description="images of the sea"),
        SearchDocument("urn:b", "Module", title="Sea ice forecaster", description="mentions plankton once"),
        SearchDocument("urn:c", "Tool", title="Café explorer", tags="notebook | jupyter"),
    ])
    return index


def test_title_matches_rank_above_description_matches() -> None:
    assert [hit.iri for hit in _index().search("plankton")] == ["urn:a", "urn:b"]


def test_every_word_must_match_and_the_last_may_be_a_prefix() -> None:
    index = _index()
    assert [hit.iri for hit in index.search("sea forec")] == ["urn:b"]
    assert index.search("plankton jupyter") == []


def test_fts_syntax_in_user_text_is_plain_words() -> None:
    index = _index()
    for text in ('"', "AND", "plankton OR", "NEAR(a b)", "col:plankton", "*", "(", "title: sea"):
        index.search(text)  # must not raise
    assert match_expression('x" OR "y') == '"x" "OR" "y"*'
    assert match_expression("  ") is None


def test_kind_filter_and_accents() -> None:
    index = _index()
    assert [hit.iri for hit in index.search("cafe")] == ["urn:c"]
    assert index.search("cafe", kind="Module") == []
    assert [hit.iri for hit in index.search("jupyter", kind="Tool")] == ["urn:c"]


def test_apply_replaces_and_removes() -> None:
    index = _index()
    index.apply([SearchDocument("urn:a", "Module", title="Diatom counter")], removed=["urn:b"])
    assert index.search("plankton") == []
    assert [hit.iri for hit in index.search("diatom")] == ["urn:a"]
    assert index.count() == 2
