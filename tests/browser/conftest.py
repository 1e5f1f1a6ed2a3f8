"""A real browser on a real JupyterLab: Debian's chromium driven by playwright.

The server runs on 127.0.0.1 with a token, in a temporary root holding copies of the
notebooks, with its own config, settings and workspace directories, and with every feature
that would reach outside the machine switched off (news, update checks, the PyPI extension
manager). The browser aborts any request that is not to that server.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts"
# What Debian's chromium needs here (no sandbox as root, no GPU), and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_SECONDS = 60


@dataclass
class JupyterLab:
    """A running JupyterLab server and where it keeps its notebooks."""

    url: str
    token: str
    root: Path
    log: Path
    outside_requests: list[str] = field(default_factory=list)

    def lab_url(self, path: str = "") -> str:
        """The URL that opens ``path`` (relative to the root) in JupyterLab, token included."""
        return f"{self.url}/lab/tree/{path}?token={self.token}"


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; missing is a failure in CI (it must be installed there), else a skip."""
    path = shutil.which("chromium")
    if path is None:
        message = "Debian's chromium is not installed (tools/install-system-deps.d/browser.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _quiet_settings(settings: Path) -> None:
    """User settings that keep JupyterLab from asking about news or fetching it."""
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterLab]:
    """A JupyterLab server on 127.0.0.1 serving a copy of notebooks/ (and the data they read)."""
    home = tmp_path_factory.mktemp("jupyter")
    root = home / "root"
    for folder in ("notebooks", "data"):  # the notebooks read ../data
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "conftest.py"))
    _quiet_settings(home / "settings")
    port, token = _free_port(), secrets.token_hex(24)
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "IPYTHONDIR": str(home / "ipython"),
    }
    if sys.prefix != sys.base_prefix:
        # A venv made with --system-site-packages imports the base interpreter's packages, but
        # Jupyter would not look for their lab extensions (widgets, plotly) there.
        paths = [os.environ.get("JUPYTER_PATH", ""), str(Path(sys.base_prefix) / "share" / "jupyter")]
        env["JUPYTER_PATH"] = os.pathsep.join(path for path in paths if path)
    command = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = home / "jupyterlab.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(command, env=env, cwd=root, stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(server, url, token, log)
        yield JupyterLab(url=url, token=token, root=root, log=log)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_serving(server: subprocess.Popen[bytes], url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"jupyter lab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)  # polling a starting server: there is no event to await
    pytest.fail(f"jupyter lab did not serve within {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def page(chromium: str, jupyter_lab: JupyterLab, request: pytest.FixtureRequest):
    """A chromium page that may talk to the JupyterLab server and nothing else."""
    from playwright.sync_api import sync_playwright

    allowed = urlsplit(jupyter_lab.url).netloc

    def only_the_server(route, req) -> None:
        netloc = urlsplit(req.url).netloc
        if req.url.startswith(("data:", "blob:")) or netloc == allowed:
            route.continue_()
        else:
            jupyter_lab.outside_requests.append(req.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.route("**/*", only_the_server)
        page = context.new_page()
        try:
            yield page
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-last.png"), full_page=True)
            context.close()
            browser.close()
