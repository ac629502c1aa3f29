"""Tokens the CLI sends to servers (an MLflow tracking server, a running `ai4kg serve`): read from a
file or the environment, never taken as an argument, where every user of the machine sees it
(`ps`) and the shell keeps it in its history."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click


def _read(path: Path) -> str:
    try:
        token = path.read_text("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read the token from {path}: {exc}", param_hint="--token-file") from None
    if not token:
        raise click.BadParameter(f"{path} is empty: it should hold the bearer token", param_hint="--token-file")
    return token


def token_options(variable: str, what: str) -> Callable[[Any], Any]:
    """`--token-file PATH` (read, surrounding whitespace stripped; else the environment variable
    `variable`), handed to the command as `token`; `--token` refused with a usage error that does
    not echo it."""
    def refuse(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is not None:
            raise click.UsageError("--token is not accepted: a token on the command line is visible in `ps` and "
                                   f"shell history. Put it in a file and give --token-file PATH, or set {variable}.",
                                   ctx)

    def token(ctx: click.Context, param: click.Parameter, path: Path | None) -> str | None:
        return _read(path) if path is not None else (os.environ.get(variable) or None)

    def decorate(command: Any) -> Any:
        command = click.option("--token", "token_argument", hidden=True, expose_value=False, is_flag=False,
                               flag_value="", callback=refuse)(command)
        return click.option("--token-file", "token", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            callback=token, help=f"File holding {what} (surrounding whitespace stripped) "
                                                 f"[else env {variable}].")(command)
    return decorate
