"""`ai4kg deploy ...` against a running server (uvicorn on loopback), as a user types it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator

import pytest
from click.testing import CliRunner

from ai4kg.api.app import create_app
from ai4kg.cli import main
from ai4kg.credentials import KeyStore
from ai4kg.workloads.service import Controller

from conftest import serving
from test_deployments import MODULE, Platform, stop_everything


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Platform]]:
    platform = Platform(tmp_path)
    _, secret = KeyStore(tmp_path / "data").create("alice", frozenset({"default"}))
    controller = Controller(platform.deployments, interval=0.2).start()
    try:
        with serving(create_app(platform.graph, KeyStore(tmp_path / "data"), platform.deployments)) as url:
            yield url, secret, platform
    finally:
        controller.stop()
        stop_everything(tmp_path / "local")
        platform.close()


def deploy(url: str, token: str | None, *args: str) -> tuple[int, str, str]:
    runner = CliRunner(env={"AI4KG_TOKEN": token} if token else {})  # a token is never an argument
    options = ["deploy", "--server", url]
    result = runner.invoke(main, [*options, *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_create_wait_list_show_delete(server: tuple[str, str, Platform]) -> None:
    url, token, _ = server
    code, out, err = deploy(url, token, "create", MODULE, "--name", "my-api", "--cpu", "1", "--memory-mb", "1000",
                            "--wait")
    assert code == 0, err
    assert re.search(r"my-api\s+running\s+module of flood-segmentation-s2:latest", out)
    assert re.search(r"api: http://127\.0\.0\.1:\d+/", out)
    code, out, _ = deploy(url, token, "create", MODULE, "--kind", "batch", "--name", "one-shot", "--json", "--",
                          "python3", "-c", "print('trained')")
    assert code == 0 and json.loads(out)["command"] == ["python3", "-c", "print('trained')"]
    code, out, _ = deploy(url, token, "list", "--json")
    assert code == 0 and [d["identifier"] for d in json.loads(out)] == ["my-api", "one-shot"]
    code, out, _ = deploy(url, token, "list", "--kind", "module")
    assert code == 0 and "my-api" in out and "one-shot" not in out
    code, out, _ = deploy(url, token, "show", "my-api")
    assert code == 0 and "queued    created by its owner" in out and "placed on datacenter local" in out
    code, out, _ = deploy(url, token, "datacenters")
    assert code == 0 and re.search(r"local\s+│?\s*healthy", out), out
    code, out, _ = deploy(url, token, "delete", "my-api")
    assert code == 0 and out.strip() == "my-api: stopped"


def test_errors_name_the_field_and_exit_1_no_server_exits_2(server: tuple[str, str, Platform]) -> None:
    url, token, platform = server
    code, _, err = deploy(url, token, "create", MODULE, "--kind", "batch")
    assert code == 1 and "error 422" in err and "command: this field is required [required]" in err
    code, _, err = deploy(url, token, "create", MODULE, "--gpu", "5")
    assert code == 1 and "resources.gpu: more than your quota allows (1) [quota]" in err
    code, _, err = deploy(url, None, "list")
    assert code == 1 and "error 401" in err
    code, _, err = deploy(url, token, "show", "nothing-here")
    assert code == 1 and "error 404" in err
    code, _, err = deploy(url, token, "reconcile")
    assert code == 1 and "error 403" in err  # administrators only
    assert platform.deployments.ledger.count() == 0
    code, _, err = deploy("http://127.0.0.1:9", token, "list")
    assert code == 2 and "no ai4kg server answers at http://127.0.0.1:9" in err


def test_a_token_is_never_an_argument(tmp_path) -> None:
    """`--token SECRET` put the secret where `ps` and shell history show it: refused (exit 2, the
    secret not echoed), for deploy and federation alike; --token-file and AI4KG_TOKEN say how."""
    for command in ("deploy", "federation"):
        result = CliRunner().invoke(main, [command, "--token", "s3cret-value", "list"])
        assert result.exit_code == 2 and "--token-file" in result.output and "AI4KG_TOKEN" in result.output
        assert "s3cret-value" not in result.output
