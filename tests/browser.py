"""Browser tests' parts: real Chromium (Debian's package) driven by Playwright, axe-core from npm,
the dashboard served by uvicorn with its control loop running, and screenshots for docs/.

Chromium is installed with apt-get when it is missing (the tests run as root on a fresh machine, as
.ci/run does); Playwright's own browser download cannot run here, so Playwright is pointed at
Debian's executable. axe-core is installed with npm into a cache folder once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "docs" / "screenshots"
AXE_VERSION = "4.14.1"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ai4kg-tests"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]
"""Without the background-networking flags Chromium keeps trying Google's hosts, which this
machine's closed network refuses."""
_install_lock = threading.Lock()


def chromium_executable() -> str:
    """Debian's Chromium, installed with apt-get if it is not there yet."""
    with _install_lock:
        found = shutil.which("chromium") or shutil.which("chromium-browser")
        if found:
            return found
        if os.geteuid() != 0:
            raise RuntimeError("Chromium is missing and these tests are not root: apt-get install chromium")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900,
                       capture_output=True)
        found = shutil.which("chromium")
        assert found, "apt-get installed chromium but it is not on PATH"
        return found


def axe_script() -> Path:
    """axe-core's browser script, from npm (installed once into the cache folder)."""
    with _install_lock:
        folder = CACHE / f"axe-core-{AXE_VERSION}"
        script = folder / "node_modules" / "axe-core" / "axe.min.js"
        if not script.exists():
            folder.mkdir(parents=True, exist_ok=True)
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder),
                            f"axe-core@{AXE_VERSION}"], check=True, timeout=600, capture_output=True)
        return script


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=chromium_executable(), args=CHROMIUM_FLAGS)


def accessibility_problems(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA).

    The script is added to the page as an inline script: the page's context must bypass the
    Content-Security-Policy (`browser.new_context(bypass_csp=True)`), which forbids inline scripts."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=axe_script().read_text("utf-8"))
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
    }""")
    return [v for v in result if v["impact"] in ("serious", "critical")]


def screenshot(page: Any, name: str) -> Path:
    """A full-page screenshot in docs/screenshots/NAME.png (the docs show them)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def dashboard_server(app: Any) -> contextlib.AbstractContextManager[str]:
    """`app` served by uvicorn on a free loopback port with its lifespan (the control loop that moves
    deployments along runs): its base URL."""
    from conftest import serving

    return serving(app, lifespan=True)


def describe(problems: list[dict[str, Any]]) -> str:
    return json.dumps(problems, indent=1)
