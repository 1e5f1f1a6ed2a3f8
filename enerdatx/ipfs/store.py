"""The content-store interface: the ContentStore ABC, its helpers, and ``open_store``.

Two stores implement it: ``EmbeddedStore`` (enerdatx.ipfs.embedded), which needs no
daemon, and ``KuboStore`` (enerdatx.ipfs.kubo) on a running IPFS daemon. This module
loads neither: ``open_store`` imports the one it returns, so the daemon client
(ipfshttpclient) is only loaded when a daemon is configured.
"""

from __future__ import annotations

import abc
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from enerdatx.errors import ConfigurationError

__all__ = ["ContentStore", "StrPath", "open_store", "default_repo", "daemon_address", "API_ENV", "REPO_ENV"]

API_ENV = "ENERDATX_IPFS_API"
REPO_ENV = "ENERDATX_IPFS_REPO"

StrPath = str | os.PathLike[str]


class ContentStore(abc.ABC):
    """Add, read, pin and move content by CID; CIDs are strings as kubo prints them."""

    @abc.abstractmethod
    def add_bytes(self, data: bytes, cid_version: int = 0) -> str:
        """Add ``data`` as a UnixFS file, pin it, and return its CID."""

    @abc.abstractmethod
    def add_file(self, path: StrPath, cid_version: int = 0, only_hash: bool = False) -> str:
        """Add a file in bounded memory and pin it (or only compute its CID); return the CID."""

    @abc.abstractmethod
    def cat_stream(self, cid: str) -> Iterator[bytes]:
        """The file's bytes, piece by piece."""

    def cat(self, cid: str) -> bytes:
        """The file's bytes, all at once."""
        return b"".join(self.cat_stream(cid))

    @abc.abstractmethod
    def has(self, cid: str) -> bool:
        """Whether the store holds the root block of ``cid`` locally."""

    @abc.abstractmethod
    def pin(self, cid: str) -> None:
        """Keep the whole DAG under ``cid`` through garbage collection."""

    @abc.abstractmethod
    def unpin(self, cid: str) -> None:
        """Drop the recursive pin on ``cid`` (its blocks go at the next ``gc``)."""

    @abc.abstractmethod
    def gc(self) -> int:
        """Delete every block no pin reaches; return how many were removed."""

    @abc.abstractmethod
    def stat(self, cid: str) -> dict[str, Any]:
        """``{"cid", "type", "size", "cumulative_size", "links"}`` of a stored file."""

    @abc.abstractmethod
    def export_car(self, cid: str, out_path: StrPath) -> None:
        """Write the DAG under ``cid`` to a CAR v1 file (complete, or not at all)."""

    @abc.abstractmethod
    def import_car(self, in_path: StrPath) -> list[str]:
        """Store every block of a CAR v1 file, pin its roots, return the roots' CIDs."""


def default_repo() -> Path:
    """``$ENERDATX_IPFS_REPO``, or ``~/.enerdatx/ipfs``."""
    return Path(os.environ.get(REPO_ENV) or Path.home() / ".enerdatx" / "ipfs")


_ADDRESS_FORM = "a multiaddr such as /ip4/127.0.0.1/tcp/5001 or http://127.0.0.1:5001"


def daemon_address(text: str) -> str:
    """A daemon's RPC address: a multiaddr as given, or an ``http(s)://HOST:PORT`` URL (what kubo
    prints and most users type) turned into the multiaddr ipfshttpclient wants.
    ConfigurationError: "expected a multiaddr such as ..., got TEXT"."""
    if text.startswith("/"):
        # Checked here, not once the command ran: /ip4/999.0.0.1/tcp/5001 got past the option.
        from enerdatx.ipfs.kubo import client_address  # noqa: PLC0415 - the daemon client, only with a daemon

        try:
            client_address(text)
        except ConfigurationError:
            raise ConfigurationError(f"expected {_ADDRESS_FORM}, got {text!r}") from None
        if re.search(r"/tcp/0+(/|$)", text):  # no daemon listens on port 0: it was "Connection refused" later
            raise ConfigurationError(f"expected {_ADDRESS_FORM} (a port from 1 to 65535), got {text!r}")
        return text
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:  # "Invalid IPv6 URL" (http://[::1), or a port out of range
        raise ConfigurationError(f"expected {_ADDRESS_FORM}, got {text!r}") from None
    if url.scheme not in ("http", "https") or not url.hostname or not port or url.path.strip("/"):  # port 0 too
        raise ConfigurationError(f"expected {_ADDRESS_FORM}, got {text!r}")
    if url.username is not None or url.query or url.fragment:  # the multiaddr has no room for them: they were dropped
        raise ConfigurationError(f"expected {_ADDRESS_FORM} without a user, a password, a query or a fragment "
                                 f"(they are not sent to the daemon), got {text!r}")
    try:
        host = ipaddress.ip_address(url.hostname)
        protocol = "ip4" if host.version == 4 else "ip6"
    except ValueError:
        protocol = "dns"
    return f"/{protocol}/{url.hostname}/tcp/{port}/{url.scheme}"


def open_store(directory: StrPath | None = None, *, api: str | None = None) -> ContentStore:
    """The configured store: a daemon when ``api`` or ``$ENERDATX_IPFS_API`` is set, else embedded.

    ``$ENERDATX_IPFS_API`` is read as ``enerdatx ipfs --api`` is; set but empty, it is unset, but
    blank (" ") it is refused: KuboStore took it for the address " /http".
    """
    configured = os.environ.get(API_ENV, "")
    if not api and configured:
        if not configured.strip():
            raise ConfigurationError(f"${API_ENV} is blank ({configured!r}): set it to {_ADDRESS_FORM}, "
                                     "or unset it for the embedded store")
        try:
            api = daemon_address(configured)
        except ConfigurationError as exc:
            raise ConfigurationError(f"${API_ENV}: {exc}") from None
    if api:
        from enerdatx.ipfs.kubo import KuboStore  # noqa: PLC0415 - the daemon client, only with a daemon

        return KuboStore(api)
    from enerdatx.ipfs.embedded import EmbeddedStore  # noqa: PLC0415 - the interface loads no store

    return EmbeddedStore(directory if directory is not None else default_repo())
