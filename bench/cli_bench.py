"""Command-line start-up (issue 17): CPU time of `ai4kg --help`, of `ai4kg validate FILE`, and of the
upstream validator `ai4-metadata validate FILE` on the same file, side by side in one run.

    uv run python bench/cli_bench.py                                   # 5 runs of each, medians and ratios
    uv run python bench/cli_bench.py --file PATH --repeat 9
    uv run python bench/cli_bench.py --upstream /tmp/ai4md/bin/ai4-metadata

CPU time is the child's user + system time (the RUSAGE_CHILDREN difference around each run), so
it counts what the command costs on any machine, not how long it waited for a busy one; wall time
is given beside it. The commands run in turns (help, validate, upstream, help, ...) after one
unmeasured run of each, so noise from the shared machine falls on all of them alike.

`ai4kg` runs as `python -m ai4kg` with this interpreter (what the console script runs). The
upstream validator is the PyPI package `ai4-metadata`, installed apart from ai4kg, e.g.
`uv venv /tmp/ai4md && uv pip install --python /tmp/ai4md ai4-metadata`: it is taken from --upstream,
else from PATH; without it its rows are left out, with a note. The file defaults to the first
`*__ai4-metadata.yml` in ../shared/ai4eosc/modules.

Acceptance (issue 17): `ai4kg --help` <= 0.5 CPU-s; `ai4kg validate` <= 1.5x the upstream's CPU time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import Report, now, publish  # noqa: E402  (bench/run.py helpers)

HELP_LIMIT_S = 0.5
VALIDATE_RATIO_LIMIT = 1.5
MODULES = HERE.parent.parent / "shared" / "ai4eosc" / "modules"


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: list[str]) -> tuple[float, float, int]:
    """CPU seconds (user + system) and wall seconds of one run of `command`, and its exit status."""
    cpu, wall = cpu_of_children(), now()
    finished = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, check=False)
    return cpu_of_children() - cpu, now() - wall, finished.returncode


def heaviest_imports(command: list[str], count: int = 10) -> tuple[float, list[tuple[str, float]]]:
    """What a command's imports cost (python -X importtime, one run): the total, and the packages
    with the most import time of their own modules (self time summed by top-level package, so that
    pandas counts as pandas even when morph-kgc imports it), largest first."""
    assert command[0] == sys.executable
    finished = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True,
                              check=False)
    totals: dict[str, float] = defaultdict(float)
    pattern = re.compile(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)")
    for line in finished.stderr.splitlines():
        if (match := pattern.match(line)) is not None:
            totals[match.group(2).split(".", 1)[0]] += int(match.group(1)) / 1e6
    return sum(totals.values()), sorted(totals.items(), key=lambda kv: -kv[1])[:count]


def default_file() -> Path | None:
    return next(iter(sorted(MODULES.glob("*__ai4-metadata.yml"))), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=None, help="the metadata file to validate")
    parser.add_argument("--upstream", default=None, help="the upstream `ai4-metadata` executable (default: on PATH)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs of each command (default 5)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    started = now()
    file = args.file or default_file()
    if file is None or not file.is_file():
        raise SystemExit(f"no metadata file: give --file (none found in {MODULES})")
    upstream = args.upstream or shutil.which("ai4-metadata")
    if upstream and not (os.path.isfile(upstream) and os.access(upstream, os.X_OK)):
        raise SystemExit(f"--upstream {upstream}: not an executable file")

    ai4kg = [sys.executable, "-m", "ai4kg"]
    commands = {"python -c pass": [sys.executable, "-c", "pass"],
                "ai4kg --help": [*ai4kg, "--help"],
                "ai4kg validate": [*ai4kg, "validate", str(file)]}
    if upstream:
        commands["ai4-metadata validate"] = [upstream, "validate", str(file)]

    report = Report()
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    wall: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, set[int]] = {name: set() for name in commands}
    with report.phase(f"{args.repeat} runs of each command, in turns (after one unmeasured run each)"):
        for name, command in commands.items():
            codes[name].add(run_once(command)[2])
        for _ in range(args.repeat):
            for name, command in commands.items():
                seconds, elapsed, code = run_once(command)
                cpu[name].append(seconds)
                wall[name].append(elapsed)
                codes[name].add(code)

    median = {name: statistics.median(values) for name, values in cpu.items()}
    for name in commands:
        spread = f"runs: {', '.join(f'{v:.2f}' for v in cpu[name])} CPU-s; wall median {statistics.median(wall[name]):.2f} s"
        status = "" if codes[name] == {0} else f"; exit status {sorted(codes[name])}"
        ratio = ""
        if name == "ai4kg --help":
            ratio = f"{median[name] / HELP_LIMIT_S:.2f}x the {HELP_LIMIT_S} s limit"
        elif name == "ai4kg validate" and "ai4-metadata validate" in median:
            ratio = f"{median[name] / median['ai4-metadata validate']:.2f}x upstream (limit {VALIDATE_RATIO_LIMIT}x)"
        elif name == "ai4-metadata validate":
            ratio = "1.00x (baseline)"
        elif name == "python -c pass":
            ratio = "the interpreter's own start"
        report.row("CLI start-up", f"{name}: CPU (user+sys), median of {args.repeat}", f"{median[name]:.3f} s",
                   spread + status, ratio)

    verdicts = [f"- `ai4kg --help` <= {HELP_LIMIT_S} CPU-s: "
                f"{'pass' if median['ai4kg --help'] <= HELP_LIMIT_S else 'FAIL'} ({median['ai4kg --help']:.3f} s)"]
    if "ai4-metadata validate" in median:
        ratio = median["ai4kg validate"] / median["ai4-metadata validate"]
        verdicts.append(f"- `ai4kg validate` <= {VALIDATE_RATIO_LIMIT}x `ai4-metadata validate`: "
                        f"{'pass' if ratio <= VALIDATE_RATIO_LIMIT else 'FAIL'} ({ratio:.2f}x)")
    else:
        verdicts.append("- `ai4-metadata validate`: not measured (not on PATH; install the PyPI package "
                        "`ai4-metadata` in a venv of its own and give --upstream)")
    report.sections.append("### Acceptance\n\n" + "\n".join(verdicts) + "\n")

    with report.phase("import times (python -X importtime, one run each)"):
        for name in ("ai4kg --help", "ai4kg validate"):
            total, rows = heaviest_imports(commands[name])
            report.sections.append(f"### `{name}`: import time by package (python -X importtime, one run; "
                                   f"all imports: {total * 1000:.0f} ms)\n\n| package | own import time |\n|---|---|\n"
                                   + "\n".join(f"| {package} | {seconds * 1000:.0f} ms |" for package, seconds in rows)
                                   + "\n")

    publish("Issue 17: the command line's start-up", "cli_bench.py", report, started, args.out,
            extra=f"File: `{file}`. Upstream: `{upstream or '(not found)'}`.")


if __name__ == "__main__":
    main()
