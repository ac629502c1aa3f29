"""The `ai4kg` command, as a console script and as `python -m ai4kg`."""

import os
import sys


def without_script_directory() -> None:
    """Take the script's own directory off the import path.

    A console script starts with its directory (the environment's bin/) first on sys.path, and some
    packages put plain .py scripts there that then shadow modules of the same name: jsonpath-rw
    (which mlcroissant needs) installs bin/jsonpath.py, which hides the `jsonpath` module that
    morph-kgc imports. Nothing the command needs lives in bin/."""
    script_directory = os.path.dirname(os.path.abspath(sys.argv[0]))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != script_directory]


def run() -> None:
    without_script_directory()
    from .cli import main

    main()


if __name__ == "__main__":
    run()
