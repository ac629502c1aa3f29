"""The program a federation's server deployment runs: `python -m ai4kg.federated.superlink STATE`.

It reads what the platform left in the federation's state folder (the Flower environment, the
host to listen on, the TLS files, the token the ServerApp posts its rounds with) and becomes the
SuperLink (exec), listening on the port its executor gave it ($PORT_superlink). The token goes to
the SuperLink's environment, which its ServerApp inherits: never into the deployment's command,
which the graph records.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..adapters.flower import superlink_command
from .environment import process_environment

TOKEN_VARIABLE = "AI4KG_RECORDER_TOKEN"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ai4kg.federated.superlink STATE_FOLDER", file=sys.stderr)
        return 2
    state = Path(argv[1])
    spec = json.loads((state / "superlink.json").read_text("utf-8"))
    port = os.environ.get("PORT_superlink") or str(spec.get("port", 9092))
    bin_directory = Path(spec["bin"])
    environment = process_environment(state / "home", bin_directory)
    environment[TOKEN_VARIABLE] = (state / "recorder.token").read_text("utf-8").strip()
    command = superlink_command(bin_directory, state, spec["host"], int(port))
    os.execve(command[0], command, environment)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
