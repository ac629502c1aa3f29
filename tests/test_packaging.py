"""A wheel built from the repository carries ontology/, shapes/, mappings/ and works outside it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

from conftest import MODULES, REPO


def test_wheel_installs_and_imports_from_its_own_copy(tmp_path: Path) -> None:
    # Build from a copy of the files git would commit, so nothing stale in the checkout leaks in.
    source = tmp_path / "source"
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split()
    for name in listed:
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"), str(source)],
                   check=True, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("ai4kg-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for required in ("ai4kg/ontology/ai4kg.ttl", "ai4kg/ontology/vocabularies.ttl", "ai4kg/shapes/module.ttl",
                     "ai4kg/mappings/ai4-metadata-v2.rml.ttl", "ai4kg/mappings/ai4-metadata-v2.schema.json",
                     "ai4kg/graph/queries/asset-counts.rq", "ai4kg/graph/store.py", "ai4kg/api/sparql.py",
                     "ai4kg/api/graphql/__init__.py", "ai4kg/api/graphql/schema.py",
                     "ai4kg/workloads/service.py", "ai4kg/adapters/local_runner.py", "ai4kg/shapes/deployments.ttl",
                     "ai4kg/mappings/deployments/deployment.rml.ttl",
                     "ai4kg/mappings/deployments/deployment.schema.json", "ai4kg/federated/service.py",
                     "ai4kg/shapes/federated.ttl", "ai4kg/mappings/federated/federated.rml.ttl",
                     "ai4kg/mappings/federated/federation.schema.json", "ai4kg/mappings/federated/round.schema.json",
                     "ai4kg/federated/flower-app/pyproject.toml", "ai4kg/federated/flower-app/uv.lock",
                     "ai4kg/federated/flower-app/ai4kg_flower/server_app.py"):
        assert required in names, required
    top_level = {name.split("/")[0] for name in names if not name.startswith("ai4kg-")}
    assert top_level == {"ai4kg"}, f"only one import name may be installed, found {top_level}"
    assert not any(name.startswith("ai4kg/tests/") or name.startswith("ai4kg/bench/") for name in names)

    # A fresh venv with the wheel installed by pip (offline, no dependencies); the dependencies
    # are taken from this environment through a .pth file, so the test needs no network.
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=False, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    deps = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "deps.pth").write_text("\n".join(deps) + "\n")
    script = (
        "import ai4kg.graph.store as s, pathlib, sys;"
        "from ai4kg.catalog import validate_files;"
        f"r = validate_files([pathlib.Path({str(MODULES / 'ai4os-yolo-torch__ai4-metadata.yml')!r})], 'https://x.org/');"
        "print(s.__file__); print(r[0].status)"
    )
    result = subprocess.run([str(python), "-I", "-c", script], check=True, capture_output=True, text=True,
                            cwd=tmp_path)
    module_file, status = result.stdout.split()
    assert module_file.startswith(site), f"imported from {module_file}, not the wheel's copy"
    assert status == "valid"
    version = subprocess.run([str(env_dir / "bin" / "ai4kg"), "--version"], check=True, capture_output=True, text=True)
    assert version.stdout.startswith("ai4kg, version ")
