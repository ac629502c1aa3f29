"""The program a federation's server deployment runs on the local executor:
`python -m ai4kg.federated.superlink STATE`.

It reads what the platform left in the federation's folder (superlink.json: the Flower environment
and the host to listen on; secrets/: the TLS files and superlink.env, the token the ServerApp posts
its rounds with) and becomes the SuperLink (exec), listening on the port its executor gave it
($PORT_superlink). The token goes to the SuperLink's environment, which its ServerApp inherits:
never into the deployment's command, which the graph records. (On Nomad the same files reach the
job as a Nomad Variable: adapters/nomad.py.)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from ..adapters.flower import superlink_command
from .environment import process_environment

TOKEN_VARIABLE = "AI4KG_RECORDER_TOKEN"


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (the format of a Nomad env template)."""
    found = {}
    for line in path.read_text("utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            found[key.strip()] = value.strip()
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m ai4kg.federated.superlink STATE_FOLDER", file=sys.stderr)
        return 2
    state = Path(argv[1])
    spec = json.loads((state / "superlink.json").read_text("utf-8"))
    port = os.environ.get("PORT_superlink") or str(spec.get("port", 9092))
    bin_directory = Path(spec["bin"])
    environment = process_environment(state / "home", bin_directory)
    environment.update(read_env(state / "secrets" / "superlink.env"))
    command = superlink_command(str(bin_directory / "flower-superlink"), str(state / "secrets"), spec["host"], port,
                                str(state / "superlink.db"))
    os.execve(command[0], command, environment)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv))
