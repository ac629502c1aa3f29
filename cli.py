"""The `ai4kg` command: validate, import, query, export, stats, migrate, search, fair, provenance, apikey, deploy, federation, serve."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import pyoxigraph as ox
from rich.console import Console
from rich.table import Table

from . import __version__
from .cli_tokens import token_options
from .config import DEFAULT_VO, VISIBILITIES, Settings
from .graph.views import NATIVE, VIEWS, UnknownView, serialize, view_of
from .federated.cli import federation
from .workloads.cli import deploy

if TYPE_CHECKING:
    from rich.progress import Progress

    from .catalog import FileReport
    from .graph.store import KnowledgeGraph

# What a command needs beyond this is imported by that command: `ai4kg --help` loads no mapping
# engine, SHACL, SPARQL parser, JSON-LD processor, HTTP client or server (tests/test_cli_startup.py).

EXIT_OK, EXIT_INVALID, EXIT_UNREADABLE = 0, 1, 2
_EXPORT_FORMATS = {"ttl": ox.RdfFormat.TURTLE, "trig": ox.RdfFormat.TRIG, "nq": ox.RdfFormat.N_QUADS,
                   "jsonld": ox.RdfFormat.JSON_LD, "rdfxml": ox.RdfFormat.RDF_XML, "nt": ox.RdfFormat.N_TRIPLES}

# emoji=False: a path or value that reads like :name: is printed as it is (and rich's table of
# emoji codes, 25 ms to load, is not read for every message)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
out = Console(highlight=False, emoji=False)


def _open(ctx: click.Context) -> KnowledgeGraph:
    from .graph.store import KnowledgeGraph, StoreLocked

    settings: Settings = ctx.obj
    try:
        return KnowledgeGraph(settings)
    except StoreLocked as exc:
        err.print(f"[red]error:[/red] {exc}")
        sys.exit(EXIT_UNREADABLE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), envvar="AI4KG_DATA",
              help="Store directory [env AI4KG_DATA; default: the user data directory].")
@click.option("--base-url", envvar="AI4KG_BASE_URL", help="Base of asset IRIs [env AI4KG_BASE_URL].")
@click.version_option(__version__, prog_name="ai4kg")
@click.pass_context
def main(ctx: click.Context, data: Path | None, base_url: str | None) -> None:
    """ai4kg: the knowledge graph of a federated AI platform for open science."""
    try:
        ctx.obj = Settings.from_env(data, base_url)
    except ValueError as exc:  # a bad AI4KG_* setting
        raise click.UsageError(str(exc)) from None


def _print_report(report: FileReport, verbose_ok: bool = True) -> None:
    colour = {"imported": "green", "valid": "green", "skipped": "yellow", "invalid": "red", "unreadable": "red"}
    if report.status in ("imported", "valid") and not report.warnings and not verbose_ok:
        return
    target = f" -> {report.iri}" if report.iri and report.status == "imported" else ""
    err.print(f"[{colour[report.status]}]{report.status}[/]: {report.path}{target}")
    for issue in report.issues:
        err.print(f"  {issue}", markup=False)


def _progress(total: int) -> Progress:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    console=err, transient=True, disable=total < 20 or not err.is_terminal)


def _expanded_or_exit(paths: tuple[Path, ...]) -> list[Path]:
    from .catalog import expand_paths

    files = expand_paths(paths)
    if not files:
        err.print("error: no metadata files (.yml, .yaml, .json) in " + ", ".join(map(str, paths)), markup=False)
        sys.exit(EXIT_UNREADABLE)
    return files


def _exit_code(reports: list[FileReport]) -> int:
    if any(r.status == "unreadable" for r in reports):
        return EXIT_UNREADABLE
    if any(r.status == "invalid" for r in reports):
        return EXIT_INVALID
    return EXIT_OK


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON on stdout.")
@click.option("--id", "identifier", help="Module identifier (default: the source repository's name).")
@click.option("--license", help="License (SPDX identifier) to record with the module.")
@click.pass_context
def validate(ctx: click.Context, files: tuple[Path, ...], as_json: bool, identifier: str | None,
             license: str | None) -> None:
    """Check metadata FILES (or folders); nothing is written.

    Exit status: 0 all valid, 1 some invalid (unparseable included), 2 some unreadable.
    """
    from .catalog import ImportOptions, validate_files

    paths = _expanded_or_exit(files)
    reports = validate_files(paths, ctx.obj.base_url, ImportOptions(identifier, license),
                             on_file=None if as_json else _print_report)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2, ensure_ascii=False))
    sys.exit(_exit_code(reports))


@main.command(name="import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--id", "identifier", help="Module identifier, for a single file.")
@click.option("--license", help="License (SPDX identifier) to record with the imported modules.")
@click.option("--vo", default=DEFAULT_VO, show_default=True, envvar="AI4KG_VO",
              help="The virtual organisation that owns the imported modules [env AI4KG_VO].")
@click.option("--visibility", type=click.Choice(VISIBILITIES), default="public", show_default=True,
              help="public: anyone may read; virtual-organisation, private: only the VO's members.")
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON on stdout.")
@click.pass_context
def import_(ctx: click.Context, paths: tuple[Path, ...], identifier: str | None, license: str | None, vo: str,
            visibility: str, as_json: bool) -> None:
    """Import metadata files or folders into the store; bad files are reported and skipped."""
    from .catalog import ImportOptions, import_files

    files = _expanded_or_exit(paths)
    if identifier and len(files) != 1:
        raise click.UsageError("--id names one module: give exactly one file")
    with _open(ctx) as graph, _progress(len(files)) as progress:
        task = progress.add_task("importing", total=len(files))

        def on_file(report: FileReport) -> None:
            progress.advance(task)
            if not as_json:
                _print_report(report, verbose_ok=len(files) <= 50)

        reports = import_files(graph, files, ImportOptions(identifier, license, vo, visibility), on_file=on_file)
    counts = {status: sum(r.status == status for r in reports) for status in ("imported", "skipped", "invalid", "unreadable")}
    if as_json:
        click.echo(json.dumps({"counts": counts, "files": [r.as_dict() for r in reports]}, indent=2, ensure_ascii=False))
    failed = [r.path for r in reports if r.status in ("invalid", "unreadable")]
    err.print(f"{len(reports)} files: {counts['imported']} imported, {counts['skipped']} skipped, "
              f"{counts['invalid']} invalid, {counts['unreadable']} unreadable")
    if failed:
        err.print("failed: " + ", ".join(failed), markup=False)
    sys.exit(_exit_code(reports))


def _term(term: Any) -> str:
    if term is None:
        return ""
    return term.value if isinstance(term, (ox.NamedNode, ox.Literal, ox.BlankNode)) else str(term)


@main.command()
@click.argument("sparql")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "tsv"]), default="table")
@click.pass_context
def query(ctx: click.Context, sparql: str, fmt: str) -> None:
    """Run a SPARQL query (text, or @file.rq) over all graphs."""
    if sparql.startswith("@"):
        try:
            sparql = Path(sparql[1:]).read_text("utf-8")
        except OSError as exc:
            err.print(f"[red]error:[/red] cannot read {sparql[1:]}: {exc.strerror}")
            sys.exit(EXIT_UNREADABLE)
    with _open(ctx) as graph:
        try:
            result = graph.query(sparql)
        except SyntaxError as exc:
            err.print(f"error: invalid SPARQL: {exc}", markup=False, style="red")
            sys.exit(EXIT_INVALID)
        if isinstance(result, ox.QueryBoolean):
            click.echo(json.dumps({"boolean": bool(result)}) if fmt == "json" else str(bool(result)).lower())
            return
        if isinstance(result, ox.QueryTriples):
            click.echo(ox.serialize(list(result), format=ox.RdfFormat.TURTLE).decode("utf-8"), nl=False)
            return
        if fmt in ("json", "csv", "tsv"):
            formats = {"json": ox.QueryResultsFormat.JSON, "csv": ox.QueryResultsFormat.CSV,
                       "tsv": ox.QueryResultsFormat.TSV}
            sys.stdout.buffer.write(result.serialize(format=formats[fmt]))
            return
        names = [v.value for v in result.variables]
        table = Table(*names, show_lines=False)
        rows = 0
        for solution in result:
            table.add_row(*(_term(solution[name]) for name in names))
            rows += 1
        out.print(table)
        err.print(f"{rows} rows")


@main.command()
@click.argument("question")
@click.option("--json", "as_json", is_flag=True, help="The whole answer as JSON (text, values, rows, SPARQL).")
@click.pass_context
def ask(ctx: click.Context, question: str, as_json: bool) -> None:
    """Ask a question in English; the answer, then its rows and the SPARQL that computed it."""
    from .assistant import QuestionRejected, ask as answer_question

    with _open(ctx) as graph:
        try:
            answer = answer_question(graph, question)
        except QuestionRejected as exc:
            err.print(f"error: {exc}", markup=False, style="red")
            sys.exit(EXIT_INVALID)
    if as_json:
        click.echo(json.dumps(answer.as_dict(), indent=2, ensure_ascii=False))
        return
    out.print(answer.text, markup=False)
    for candidate in answer.candidates:
        out.print(f"  {candidate['title']}: {', '.join(candidate['iris'])}", markup=False)
    if answer.rows:
        table = Table(*answer.columns or sorted(answer.rows[0]), show_lines=False)
        for row in answer.rows:
            table.add_row(*(row.get(name, {}).get("value", "") for name in answer.columns or sorted(row)))
        out.print(table)
    if answer.sparql:
        err.print(f"interpretation: {answer.interpretation}", markup=False)
        err.print(answer.sparql, markup=False)
    if answer.status == "refused":
        sys.exit(EXIT_INVALID)


@main.command()
@click.option("--format", "fmt", type=click.Choice(sorted(_EXPORT_FORMATS)), default=None,
              help="trig, nq, jsonld keep one named graph per asset; ttl, nt, rdfxml merge all graphs into one. "
                   "Default: trig, or ttl with --profile.")
@click.option("--profile", "profile", default=None, metavar="VIEW",
              help=f"The catalogue in a standard view instead of the raw store: {', '.join(v for v in VIEWS if v != NATIVE)} "
                   "(or the view's profile IRI).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--assets-only", is_flag=True, help="Leave out the ontology, vocabulary and platform graphs.")
@click.pass_context
def export(ctx: click.Context, fmt: str | None, output: Path | None, assets_only: bool, profile: str | None) -> None:
    """Dump the whole store, one named graph per asset, or the catalogue in a standard view (--profile)."""
    if profile is not None:
        try:
            view = view_of(profile)
        except UnknownView as exc:
            raise click.BadParameter(str(exc), param_hint="--profile") from None
        if not view.catalog_queries:
            raise click.BadParameter(f"the {view.name} view has no catalogue form", param_hint="--profile")
        rdf_format = _EXPORT_FORMATS[fmt or "ttl"]
        if rdf_format in (ox.RdfFormat.TRIG, ox.RdfFormat.N_QUADS):
            raise click.BadParameter(f"a view is one graph: use ttl, nt, rdfxml or jsonld, not {fmt}",
                                     param_hint="--format")
        with _open(ctx) as graph:
            triples = view.catalog(graph)
        if rdf_format == ox.RdfFormat.JSON_LD and view.context is not None:  # compact, in the view's context
            data = json.dumps(view.to_jsonld(triples), ensure_ascii=False, indent=2).encode("utf-8")
        else:
            data = serialize(triples, rdf_format)
    else:
        with _open(ctx) as graph:
            data = graph.export(_EXPORT_FORMATS[fmt or "trig"], assets_only)
    if output:
        output.write_bytes(data)
    else:
        sys.stdout.buffer.write(data)


@main.command()
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Counts of assets by kind, triples and search entries."""
    with _open(ctx) as graph:
        figures = graph.stats()
    if as_json:
        click.echo(json.dumps(figures, indent=2))
        return
    table = Table("what", "count")
    for kind, count in figures["assets_by_kind"].items():
        table.add_row(kind, f"{count:,}")
    table.add_row("assets", f"{figures['assets']:,}")
    table.add_row("triples", f"{figures['triples']:,}")
    table.add_row("search entries", f"{figures['search_entries']:,}")
    out.print(table)
    out.print(f"store: {figures['data_dir']}  base URL: {figures['base_url']}")


@main.command()
@click.argument("text")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def search(ctx: click.Context, text: str, limit: int) -> None:
    """Free-text search over titles, summaries, descriptions and tags."""
    with _open(ctx) as graph:
        hits = graph.search(text, None, limit)  # the command line is the platform itself: sees all
    for hit in hits:
        click.echo(f"{hit.score:8.3f}  {hit.kind:<8} {hit.iri}")


@main.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True)
def migrate(file: Path, output: Path | None, fmt: str) -> None:
    """Write the ai4-metadata 2.x form of a legacy V1 metadata.json."""
    import yaml

    from .catalog import migrate_file

    document, report = migrate_file(file)
    for issue in report.issues:
        err.print(f"  {issue}", markup=False)
    if document is None:
        err.print(f"[red]{report.status}[/]: {file}")
        sys.exit(EXIT_UNREADABLE if report.status == "unreadable" else EXIT_INVALID)
    text = (yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100) if fmt == "yaml"
            else json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    if output:
        output.write_text(text, "utf-8")
        err.print(f"wrote {output}")
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("name", required=False)
@click.option("--all", "whole_catalog", is_flag=True, help="The catalogue's report (the default without NAME).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.pass_context
def fair(ctx: click.Context, name: str | None, whole_catalog: bool, as_json: bool) -> None:
    """FAIR report of module NAME: which checks pass, and what to add to its metadata.

    Without NAME (or with --all): every module, per check and per module, and whether the
    catalogue conforms to DCAT-AP. Exit status: 0 every must-check passes, 1 some must-check
    fails, 2 no such module.
    """
    from rich.markup import escape

    from .graph.fair import PRINCIPLES, UnknownModule, catalog_fair_report, fair_report
    from .graph.namespaces import asset_iri
    from .metadata.records import is_valid_identifier

    if name and whole_catalog:
        raise click.UsageError("give NAME or --all, not both")
    with _open(ctx) as graph:  # the command line is the platform itself: sees every module
        if name:
            iri = asset_iri(ctx.obj.base_url, "Module", name) if is_valid_identifier(name) else None
            try:
                if iri is None or not graph.contains(iri):
                    raise UnknownModule(name)
                report = fair_report(graph, iri)
            except UnknownModule:
                err.print(f"error: no module named {name!r}", markup=False)
                sys.exit(EXIT_UNREADABLE)
        else:
            report = catalog_fair_report(graph)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        sys.exit(EXIT_OK if report.must_passed else EXIT_INVALID)
    marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]", "not applicable": "[dim]n/a[/]"}
    if name:
        table = Table("", "check", "FAIR", "level", "what", title=f"FAIR report of {report.name}", show_lines=True)
        for outcome in report.checks:
            check, what = outcome.check, outcome.check.title
            if outcome.status == "fail":
                reasons: dict[str, list[str]] = {}  # message -> the values at fault (placeholder links)
                for finding in outcome.findings:
                    reasons.setdefault(finding.message, []).extend([finding.value] if finding.value else [])
                text = "; ".join(m + (": " + ", ".join(v) if v else "") for m, v in reasons.items())
                what = f"{escape(check.title)}\n[red]{escape(text)}[/]\n→ {escape(check.advice)}"
            else:
                what = escape(what)
            level = f"[bold]{check.level}[/]" if check.level == "must" else check.level
            table.add_row(marks[outcome.status], check.id, check.principle, level, what)
        out.print(table)
        scores = "  ".join(f"{letter} {s.passed}/{s.applicable}" for letter, s in report.scores.items())
        out.print(f"{scores}   ({', '.join(f'{k} {v}' for k, v in PRINCIPLES.items())})")
        out.print(f"MLDCAT-AP 3.1.0: {'conforms' if report.conforms_to_mldcat_ap else 'does not conform'} "
                  f"({len(report.mldcat_ap_violations)} official results)")
    else:
        table = Table("check", "FAIR", "level", "pass", "fail", "n/a", "title", title="FAIR checks over the catalogue")
        for summary in report.checks:
            table.add_row(summary.check.id, summary.check.principle, summary.check.level, str(summary.passed),
                          f"[red]{summary.failed}[/]" if summary.failed else "0", str(summary.not_applicable),
                          escape(summary.check.title))
        out.print(table)
        modules = Table("module", *PRINCIPLES, "must-checks failed", "MLDCAT-AP", title="Modules")
        for module in report.modules:
            modules.add_row(module.name, *(f"{s.passed}/{s.applicable}" for s in module.scores.values()),
                            ", ".join(module.failed("must")) or "[green]none[/]",
                            "conforms" if module.conforms_to_mldcat_ap else "no")
        out.print(modules)
        out.print(f"DCAT-AP 3.0.1 (catalogue): {'conforms' if report.conforms_to_dcat_ap else 'does not conform'}, "
                  f"{len(report.dcat_ap_violations)} violations, "
                  f"{sum(w['count'] for w in report.dcat_ap_warnings)} warnings (recommended properties missing)")
    if not report.must_passed:
        err.print("some must-checks fail: see the advice above", markup=False)
    sys.exit(EXIT_OK if report.must_passed else EXIT_INVALID)


@main.group()
def provenance() -> None:
    """Provenance fragments (CI builds, MLflow runs, jobs) and the PROV-O graphs mapped from them."""


BUNDLE_PARTS = ("jenkins", "github-actions", "mlflow", "nomad")
"""Keys of a bundle of fragments (the upstream provenance service's input: one object with the
module's metadata under `details` and one fragment per component)."""


def _fragments_of(path: Path) -> tuple[list[tuple[Any, str]], bytes | None]:
    """The fragments a file holds (one fragment, a list, or a bundle), and a bundle's module metadata."""
    from .metadata.loader import ParseError, UnreadableFile, parse_json, read_regular_file
    from .provenance.records import MAX_FRAGMENT_DEPTH

    try:
        data = read_regular_file(path)
        document = parse_json(data.decode("utf-8"), MAX_FRAGMENT_DEPTH)
    except (UnreadableFile, ParseError, UnicodeDecodeError) as exc:
        err.print(f"error: {path}: not a JSON file ({exc})", markup=False)
        sys.exit(EXIT_UNREADABLE)
    source = f"file:{path.name}"
    if isinstance(document, list):
        return [(fragment, source) for fragment in document], None
    if isinstance(document, dict) and any(part in document for part in BUNDLE_PARTS):
        details = document.get("details")
        return ([(document[part], source) for part in BUNDLE_PARTS if part in document],
                json.dumps(details).encode() if isinstance(details, dict) else None)
    return [(data, source)], None  # one fragment: kept as the file holds it


def _print_outcome(outcome: Any) -> None:
    colour = {"created": "green", "updated": "green", "remapped": "green", "unchanged": "dim",
              "invalid": "red", "forbidden": "red"}.get(outcome.status, "yellow")
    err.print(f"[{colour}]{outcome.status}[/]: {outcome.key or '(fragment)'}"
              + (f" -> {outcome.activity}" if outcome.activity and outcome.status != "invalid" else ""))
    for issue in outcome.issues:
        err.print(f"  {issue}", markup=False)


@provenance.command("ingest")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--vo", default=DEFAULT_VO, show_default=True, help="VO of a bundle's module metadata, if it is new.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcomes as JSON on stdout.")
@click.pass_context
def provenance_ingest(ctx: click.Context, files: tuple[Path, ...], vo: str, as_json: bool) -> None:
    """Record fragments from JSON files: a fragment, a list of them, or a bundle (`details`: the
    module's metadata, imported first unless the catalogue has it; `jenkins`, `mlflow`, `nomad` ...).

    Exits with 1 if a fragment is invalid (nothing written for it), 2 for an unreadable file."""
    from .catalog import ImportOptions, InlineFile, import_files
    from .provenance.ingest import Provenance

    with _open(ctx) as graph:
        recorder = Provenance(graph)
        outcomes = []
        for path in files:
            fragments, details = _fragments_of(path)
            if details is not None:
                name = json.loads(details).get("id")
                if not recorder.application(name if isinstance(name, str) else None):
                    options = ImportOptions(identifier=name if isinstance(name, str) else None, vo=vo)
                    [report] = import_files(graph, [InlineFile(f"{path.stem}.details.json", details)], options)
                    _print_report(report)
            outcomes += recorder.ingest(fragments)
        for outcome in outcomes:
            _print_outcome(outcome)
    if as_json:
        click.echo(json.dumps([o.as_dict() for o in outcomes], indent=2, ensure_ascii=False))
    sys.exit(EXIT_INVALID if any(o.status in ("invalid", "forbidden") for o in outcomes) else EXIT_OK)


@provenance.command("remap")
@click.pass_context
def provenance_remap(ctx: click.Context) -> None:
    """Derive every provenance graph again from the stored fragments (after a mapping changed)."""
    from .provenance.ingest import BATCH_SIZE, Provenance

    with _open(ctx) as graph:
        recorder = Provenance(graph)
        total, outcomes = graph.fragments.count(), []
        with _progress(total) as progress:
            task = progress.add_task("remapping", total=total)
            for batch in graph.fragments.all(BATCH_SIZE):
                outcomes += recorder.remap(batch)
                progress.advance(task, len(batch))
    for outcome in outcomes:
        if outcome.status != "remapped":
            _print_outcome(outcome)
    remapped = sum(o.status == "remapped" for o in outcomes)
    err.print(f"{remapped} of {len(outcomes)} fragments remapped")
    sys.exit(EXIT_OK if remapped == len(outcomes) else EXIT_INVALID)


@provenance.command("sync-mlflow")
@click.argument("url", required=False, envvar="AI4KG_MLFLOW_URL")
@token_options("AI4KG_MLFLOW_TOKEN", "the server's bearer token")
@click.pass_context
def provenance_sync_mlflow(ctx: click.Context, url: str | None, token: str | None) -> None:
    """Pull every run from an MLflow tracking server [URL or env AI4KG_MLFLOW_URL]."""
    from .adapters.mlflow import MlflowUnavailable, sync

    if not url:
        raise click.UsageError("give the tracking server's URL (or set AI4KG_MLFLOW_URL)")
    with _open(ctx) as graph:
        try:
            report = sync(graph, url, token)
        except MlflowUnavailable as exc:
            err.print(f"error: {exc}", markup=False)
            sys.exit(EXIT_UNREADABLE)
    for outcome in report.outcomes:  # runs of experiments that name no module are counted, not listed
        if outcome.status in ("invalid", "forbidden") and not any(i.rule == "unknown-module" for i in outcome.errors):
            _print_outcome(outcome)
    summary = report.as_dict()
    err.print(", ".join(f"{summary[k]} {k}" for k in ("created", "updated", "unchanged", "skipped", "invalid")))
    sys.exit(EXIT_INVALID if report.invalid else EXIT_OK)


@provenance.command("show")
@click.argument("asset", metavar="KIND/NAME")
@click.option("--format", "fmt", type=click.Choice(["turtle", "jsonld", "prov-json", "graph"]), default="turtle",
              show_default=True)
@click.pass_context
def provenance_show(ctx: click.Context, asset: str, fmt: str) -> None:
    """An asset's provenance, e.g. `module/ai4os-demo-app`: PROV-O (Turtle, JSON-LD), PROV-JSON or nodes and edges."""
    from .api.assets import KINDS
    from .graph.namespaces import asset_iri
    from .provenance.documents import provenance_triples, to_jsonld, to_prov_json

    kind, _, name = asset.partition("/")
    if kind not in KINDS or not name:
        raise click.BadParameter(f"give KIND/NAME with KIND one of {', '.join(KINDS)}", param_hint="KIND/NAME")
    with _open(ctx) as graph:
        iri = asset_iri(graph.settings.base_url, KINDS[kind], name)
        if not graph.contains(iri):
            err.print(f"error: no {kind} named {name!r}", markup=False)
            sys.exit(EXIT_UNREADABLE)
        triples, walk = provenance_triples(graph, iri)
    if fmt == "turtle":
        click.echo(serialize(triples, ox.RdfFormat.TURTLE).decode("utf-8"))
    else:
        document = {"jsonld": lambda: to_jsonld(triples, iri), "prov-json": lambda: to_prov_json(triples),
                    "graph": walk.as_dict}[fmt]()
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@provenance.command("lineage")
@click.argument("iri")
@click.option("--direction", type=click.Choice(["upstream", "downstream"]), default="upstream", show_default=True)
@click.option("--depth", type=click.IntRange(1, 10), default=5, show_default=True)
@click.pass_context
def provenance_lineage(ctx: click.Context, iri: str, direction: str, depth: int) -> None:
    """What IRI came from (upstream) or what came from it (downstream), as nodes and edges."""
    from .provenance.lineage import lineage

    with _open(ctx) as graph:
        walk = lineage(graph, iri, direction, depth)  # type: ignore[arg-type]
    table = Table("depth", "kind", "types", "label", "iri")
    for node in walk.nodes:
        table.add_row(str(node.depth), node.kind, " ".join(node.types), node.label or "", node.iri)
    out.print(table)
    for edge in walk.edges:
        out.print(f"{edge.subject} [bold]{edge.relation.rsplit('#', 1)[-1]}[/] {edge.object}", soft_wrap=True)
    if walk.truncated:
        err.print("the walk stopped at its node limit: narrow it with --depth", markup=False)


@main.group()
def apikey() -> None:
    """API keys for machine clients: create, list, revoke (kept in the data directory)."""


@apikey.command("create")
@click.option("--label", required=True, help="What the key is for, e.g. 'CI of my-module'.")
@click.option("--vo", "vos", multiple=True, help="A VO whose non-public assets the key may read (repeatable).")
@click.option("--admin", is_flag=True, help="A platform administrator's key: reads everything and may write.")
@click.pass_context
def apikey_create(ctx: click.Context, label: str, vos: tuple[str, ...], admin: bool) -> None:
    """Make a key; it is printed once and cannot be shown again."""
    from .credentials import KeyStore

    store = KeyStore(ctx.obj.data_dir)
    key, secret = store.create(label, frozenset(vos), admin)
    err.print(f"key {key.id} ({label}): VOs {', '.join(sorted(key.vos)) or '-'}{'; administrator' if admin else ''}")
    err.print("send it as 'Authorization: Bearer <key>'; it is not stored and cannot be shown again:")
    click.echo(secret)


@apikey.command("list")
@click.pass_context
def apikey_list(ctx: click.Context) -> None:
    """The keys, without their secrets."""
    from .credentials import KeyStore

    table = Table("id", "label", "VOs", "admin", "created", "revoked")
    for key in KeyStore(ctx.obj.data_dir).list():
        table.add_row(key.id, key.label, " ".join(sorted(key.vos)), "yes" if key.admin else "", key.created,
                      key.revoked or "")
    out.print(table)


@apikey.command("revoke")
@click.argument("key_id")
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its id; requests with it get 401 from then on."""
    from .credentials import KeyStore

    if not KeyStore(ctx.obj.data_dir).revoke(key_id):
        err.print(f"error: no active key {key_id!r}", markup=False)
        sys.exit(EXIT_INVALID)
    err.print(f"revoked {key_id}")


def server_options() -> dict[str, str]:
    """uvicorn's HTTP parser and event loop for `serve`: httptools and uvloop (dependencies of
    ai4kg; uvloop has no Windows build), else the pure-Python h11 and asyncio."""
    from importlib.util import find_spec

    return {"http": "httptools" if find_spec("httptools") else "h11",
            "loop": "uvloop" if find_spec("uvloop") else "asyncio"}


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load the demo catalog when the store is empty.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, demo: bool) -> None:
    """Serve the store over HTTP: the dashboard at /, the APIs (SPARQL 1.1 at /sparql, REST, GraphQL, OAI-PMH)."""
    import gc

    import uvicorn

    from .api.app import create_app

    graph = _open(ctx)
    if demo and graph.stats()["assets"] == 0:
        from .demo import load_demo_catalog

        reports = load_demo_catalog(graph)
        err.print(f"demo catalog: {sum(r.status == 'imported' for r in reports)} modules loaded")
    options = server_options()
    err.print(f"ai4kg {__version__}: store {ctx.obj.data_dir}; dashboard at http://{host}:{port}/, SPARQL at "
              f"http://{host}:{port}/sparql (uvicorn with {options['http']} and {options['loop']})")
    app = create_app(graph, platform_url=f"http://{'127.0.0.1' if host in ('0.0.0.0', '::', '') else host}:{port}")
    executor = app.state.deployments.executor
    err.print(f"deployments run by the {executor.name} executor on "
              f"{', '.join(sorted(executor.capacity())) or '(no datacenter)'}; `ai4kg deploy --help`")
    periodic = None
    if ctx.obj.mlflow_url:  # pull MLflow runs as provenance while serving
        from .adapters.mlflow import PeriodicSync

        periodic = PeriodicSync(graph, ctx.obj.mlflow_url, ctx.obj.mlflow_sync_interval, ctx.obj.mlflow_token)
        periodic.start()
        err.print(f"MLflow runs from {ctx.obj.mlflow_url} every {ctx.obj.mlflow_sync_interval:g} s")
    # The libraries that routes import on first use (they are kept off the command line's start) are
    # imported now, so that no client's first request waits for them, and frozen with the rest.
    import jsonschema  # noqa: F401
    import pyshacl  # noqa: F401
    import rdflib.plugins.sparql.algebra  # noqa: F401
    import pyld.jsonld  # noqa: F401

    # Everything built so far (modules, the app and its routes, the GraphQL schema, vocabularies, the
    # ontology) lives as long as the process. Moved out of the collected generations, it is no longer
    # walked by the full collections that request garbage keeps triggering: pauses of about 100 ms
    # otherwise, which set the p99 of the larger answers (a GraphQL page of 50: 130 -> 36 ms).
    gc.collect()
    gc.freeze()
    # The event loop shares the GIL with the worker threads; by default a thread that wants it waits
    # up to 5 ms per runnable thread, so under a full load of requests a health probe waited 250 ms
    # (p99). A 1 ms switch interval brought that under 100 ms at the same throughput
    # (bench/hardening_bench.py, issue 14).
    sys.setswitchinterval(0.001)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", **options)
    finally:
        if periodic is not None:
            periodic.stop()
        app.state.federations.close()
        app.state.deployments.close()


main.add_command(deploy)
main.add_command(federation)
