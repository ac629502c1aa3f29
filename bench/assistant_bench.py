"""Assistant benchmarks (issue 15): accuracy on the development set, and time per question.

    uv run python bench/assistant_bench.py            # dev set + a store of 10,000 modules (~4 min, 2 cores)
    uv run python bench/assistant_bench.py --quick    # dev set + 1,000 modules

1. Accuracy: the store of ../shared/assistant/README.md (the real module files, then the demo
   provenance fragments, imported with the CLI), the 40 questions of questions-dev.yaml asked with
   `assistant.ask`, each answer compared as that README says; accuracy per family, and the failures.
   Skipped when ../shared is not beside the checkout.
2. Time per question on a store of `--modules` generated modules (bench/generate.py, imported with
   `catalog.import_files`): the dev set's questions plus questions that name generated modules by
   their titles. For each, the whole `ask()` (interpretation + query + answer) and, as the baseline
   in the same process, the same compiled query run alone (`assistant.run`): what the parser and
   the answer add is the difference. Questions alternate between the two, so noise falls on both.
3. The model path: an OpenAI-compatible test double (tests/openai_double.py) answering at once with
   a fixed query; `Answer.seconds - Answer.model_seconds` is what the model path adds of its own,
   against the embedded parser answering the same question.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))

import generate as gen  # noqa: E402
from devset import right  # noqa: E402
import yaml  # noqa: E402
from run import Report, fmt, log, now, publish  # noqa: E402

from ai4kg.assistant import ask, run  # noqa: E402
from ai4kg.assistant.compiler import compile_query  # noqa: E402
from ai4kg.assistant.lexicon import names, vocabulary  # noqa: E402
from ai4kg.assistant.parser import Interpretation, parse  # noqa: E402
from ai4kg.assistant.schema import schema  # noqa: E402
from ai4kg.catalog import import_files  # noqa: E402
from ai4kg.config import Settings  # noqa: E402
from ai4kg.graph.store import KnowledgeGraph  # noqa: E402

SHARED = REPO.parent / "shared"
DEV_SET = SHARED / "assistant" / "questions-dev.yaml"
TODAY = dt.date(2026, 12, 7)


def accuracy(report: Report, work: Path) -> list[str]:
    entries = yaml.safe_load(DEV_SET.read_text("utf-8"))
    data = work / "dev-store"
    for args in (["import", str(SHARED / "ai4eosc" / "modules")],
                 ["provenance", "ingest", str(SHARED / "ai4eosc" / "provenance" / "fragments-demo-app.json")]):
        # the import exits 1: three of the real files are invalid, and are skipped (as the README says)
        subprocess.run([sys.executable, "-m", "ai4kg", "--data", str(data), *args], cwd=REPO, capture_output=True)
    by_family: dict[str, list[bool]] = defaultdict(list)
    failures = []
    with KnowledgeGraph(Settings(data_dir=data)) as graph:
        for entry in entries:
            answer = ask(graph, entry["question"], today=TODAY)
            ok = right(entry, answer)
            by_family[entry["family"]].append(ok)
            if not ok:
                failures.append(f"- {entry['id']} ({entry['family']}): {entry['question']} -> {answer.status} "
                                f"{str(answer.values)[:200]}; gold {str(entry['answer'])[:200]}")
    total = sum(sum(v) for v in by_family.values())
    report.row("1. accuracy", "dev set, exactly right", f"{total} / {len(entries)}", "acceptance: >= 36")
    for family, results in sorted(by_family.items()):
        report.row("1. accuracy", family, f"{sum(results)} / {len(results)}")
    return [entry["question"] for entry in entries], failures


def speed(report: Report, work: Path, modules: int, questions: list[str]) -> None:
    with report.phase(f"2. generate and import {modules:,} modules"):
        paths = gen.write(work / "modules", modules, seed=0)
        graph = KnowledgeGraph(Settings(data_dir=work / "store"))
        reports = import_files(graph, paths)
    if any(r.status != "imported" for r in reports):
        raise SystemExit("benchmark input rejected")
    named = [title for _, _, title, _ in graph.index.names(None, "Module")[:10]]
    questions = questions + [f"What is the docker image of {t}?" for t in named[:5]] + \
        [f"Which libraries does {t} use?" for t in named[5:10]]
    vocab = vocabulary()
    for question in questions[:3]:  # warm: vocabulary, names, schema, rapidfuzz
        ask(graph, question, today=TODAY)
    whole, alone, interpretation, added = [], [], [], []
    for question in questions:
        started = now()
        shape = schema(graph)
        parsed = parse(question, vocab, names(graph, None), shape, TODAY)
        query = compile_query(parsed, shape.implied(parsed.cls)) if isinstance(parsed, Interpretation) else None
        interpretation.append(now() - started)
        if query is not None:
            started = now()
            run(graph, query, None, 30)
            alone.append(now() - started)
        started = now()
        ask(graph, question, today=TODAY)
        whole.append(now() - started)
        if query is not None:
            added.append(whole[-1] - alone[-1])
    p50_whole, p50_alone = statistics.median(whole), statistics.median(alone)
    report.row("2. speed", f"ask(), p50 over {len(questions)} questions, {modules:,} modules", fmt(p50_whole),
               f"p90 {fmt(sorted(whole)[int(len(whole) * 0.9)])}; acceptance: p50 <= 50 ms",
               ratio=f"{p50_whole / p50_alone:.2f}x the queries' p50")
    report.row("2. speed", "the compiled query alone (baseline), p50", fmt(p50_alone), f"{len(alone)} queries",
               ratio="1.00x")
    report.row("2. speed", "interpretation (parse + compile), p50", fmt(statistics.median(interpretation)))
    report.row("2. speed", "what ask() adds to its query (parse, checks, answer), p50 of the differences",
               fmt(statistics.median(added)), "question by question: ask() minus the same query alone")
    model_path(report, graph, questions[:12])
    graph.close()


def model_path(report: Report, graph: KnowledgeGraph, questions: list[str]) -> None:
    from openai_double import OpenAIDouble

    served = iter(range(1, 1_000_000))

    def reply(request: dict) -> str:  # a query of its own each time: no check is remembered from the last
        return ("```sparql\nPREFIX ai4kg: <https://w3id.org/ai4kg/ns#>\nSELECT DISTINCT ?m WHERE "
                "{ ?m a ai4kg:Module ; ai4kg:library <https://w3id.org/ai4kg/vocab/library/pytorch> } "
                f"LIMIT {next(served)}\n```")

    embedded_settings = graph.settings
    own, embedded = [], []
    with OpenAIDouble(replies=reply) as model:
        with_model = replace(embedded_settings, assistant_url=model.url, assistant_model="bench")
        for question in questions:
            graph.settings = with_model
            answer = ask(graph, question, today=TODAY)
            assert answer.generator == "model", answer
            own.append(answer.seconds - answer.model_seconds - answer.query_seconds)
            graph.settings = embedded_settings
            embedded.append(ask(graph, question, today=TODAY).seconds)
    p50_own, p50_embedded = statistics.median(own), statistics.median(embedded)
    report.row("3. model path", "ask() minus the model's and the query's time, p50", fmt(p50_own),
               "prompt, schema summary, examples, checks, answer; acceptance: <= 20 ms of its own",
               ratio=f"{p50_own / p50_embedded:.2f}x the embedded parser's whole ask()")
    report.row("3. model path", "the embedded parser's whole ask() (baseline), p50", fmt(p50_embedded), ratio="1.00x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 modules instead of 10,000")
    parser.add_argument("--modules", type=int, default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    modules = args.modules or (1_000 if args.quick else 10_000)
    started = now()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="ai4kg-assistant-") as scratch:
        work = Path(scratch)
        questions, failures = [], []
        if DEV_SET.exists():
            with report.phase("1. accuracy on the development set"):
                questions, failures = accuracy(report, work)
        else:
            log(f"{DEV_SET} not found: accuracy skipped")
        if failures:
            report.sections += ["### Failures", "", *failures, ""]
        speed(report, work, modules, questions or ["how many modules use pytorch?", "modules updated since 2025"])
    publish("Issue 15: the assistant", "assistant_bench.py", report, started, args.out)


if __name__ == "__main__":
    main()
