"""``KuboStore``: the content-store interface on a running IPFS daemon's /api/v0 RPC.

Reached through ipfshttpclient 0.7.0, whose ``connect()`` refuses every daemon newer
than go-ipfs 0.8; so the client is built directly and the version is checked here.
Kubo (go-ipfs) and js-ipfs both serve this RPC. Every read has a timeout and every answer
a deadline and (but for file contents) a size cap; a daemon that is down, does not answer,
answers forever or answers too much becomes ``DaemonUnavailableError``.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

from enerdatx.errors import (
    BlockMissingError,
    CarFormatError,
    ConfigurationError,
    ContentStoreError,
    DaemonUnavailableError,
    InvalidCIDError,
    StorageError,
)
from enerdatx.files import atomic_output, open_regular_file
from enerdatx.ipfs.blocks import cid_string, parse_cid
from enerdatx.ipfs.car import car_file, missing_blocks, read_car, require_roots
from enerdatx.ipfs.store import ContentStore, StrPath

# ipfshttpclient 0.7.0 on urllib3 2 makes urllib3 warn at users, about no code of theirs: at the
# import, a NotOpenSSLWarning where Python is built with LibreSSL (macOS); on every request, a
# FutureWarning that ipfshttpclient passes the `strict` argument urllib3 no longer needs. Only
# those two are hushed: the first around the import, the second (global, as it is raised on every
# request, from any thread) by its exact message and module.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="urllib3 v2 only supports OpenSSL", module="urllib3")
    import ipfshttpclient
    import ipfshttpclient.exceptions as rpc_errors
    import ipfshttpclient.http_common as http_common
    import requests
    from ipfshttpclient import multipart
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning,
                        module="urllib3.poolmanager")


__all__ = ["KuboStore", "MINIMUM_VERSIONS", "DEFAULT_DEADLINE", "MAX_ANSWER_BYTES", "client_address"]

# Older daemons answer GET requests or lack `dag export`/`dag import`.
MINIMUM_VERSIONS = {"kubo": (0, 5, 0), "js-ipfs": (0, 18, 0)}

_OS_ERROR = re.compile(r"\[Errno -?\d+\] ([^\"')\]]+)")


def _connection_failure(exc: BaseException) -> str:
    """What the system said ("Connection refused"), not the three wrappers urllib3 puts around it."""
    cause: BaseException | None = exc
    seen: set[int] = set()
    while cause is not None and id(cause) not in seen:  # a chain set by hand may loop
        if isinstance(cause, OSError) and isinstance(cause.strerror, str) and cause.strerror:
            return cause.strerror
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    found = _OS_ERROR.search(str(exc))
    return found.group(1).strip() if found else str(exc)


def _json(reply: Any) -> Any:
    """A daemon's JSON answer as decoded: ipfshttpclient wraps what it returns in a Mapping even
    when the daemon answered a list or a number."""
    return reply.as_json() if hasattr(reply, "as_json") else reply


def _shown(reply: Any) -> str:
    """A daemon's answer quoted in a message: at most 100 characters of it."""
    text = repr(_json(reply))
    return text if len(text) <= 100 else text[:97] + "..."


# A daemon that looks for content and gives up (its own `timeout` option) says one of these.
_NOT_FOUND = re.compile(r"not found|could not find|no link named|timed out|deadline exceeded", re.IGNORECASE)
HAS_TIMEOUT = 2.0  # seconds a daemon may spend deciding it lacks a block locally


DEFAULT_DEADLINE = 600.0  # seconds a daemon may spend sending one answer, file contents included
# An RPC's JSON answer is held whole before it is decoded; kubo's longest, /repo/gc (one line
# per removed block), is read line by line and counted here instead, up to this too.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_UNCAPPED = frozenset({"/cat", "/dag/export"})  # file contents: streamed in pieces, any size
_PIECE = 64 * 1024


class _BoundedAnswer:
    """A daemon's answer body (urllib3's response) read in pieces, against a deadline and a cap.

    ipfshttpclient has requests read a body with ``chunk_size=None``, which urllib3 takes as "all
    of it in one read" when the body is not chunked: a daemon sending forever grew the process
    without bound, and one trickling a byte now and then never reached the per-read timeout, so
    add and cat hung. Here each read takes what has arrived, at most 64 KiB (``read1``), and the
    answer fails once it runs past its deadline or its cap. Whatever requests asks of the
    response besides ``stream`` is the response's own.
    """

    def __init__(self, raw: Any, *, api: str, path: str, deadline: float | None, limit: int | None) -> None:
        self._raw = raw
        self._api, self._path, self._deadline, self._limit = api, path, deadline, limit
        # From the answer's headers on: an upload (add, dag import) may take any time before.
        self._until = None if deadline is None else time.monotonic() + deadline

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        received = 0
        while True:
            # A daemon that falls silent is given up by the per-read timeout, so the deadline is
            # overrun by at most that.
            if self._until is not None and time.monotonic() > self._until:
                raise DaemonUnavailableError(
                    f"{self._api} was still sending its answer to {self._path} after {self._deadline:g} s: "
                    f"given up (KuboStore(deadline=...) allows longer)")
            data = self._raw.read1(_PIECE, decode_content=decode_content)
            if not data:
                return
            received += len(data)
            if self._limit is not None and received > self._limit:
                raise DaemonUnavailableError(
                    f"{self._api} answered {self._path} with more than {self._limit:,} bytes, "
                    f"which no daemon's answer to it holds")
            yield data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def _normalise(cid: str) -> str:
    # js-ipfs prints CIDv1 in base58btc; kubo and this package print base32.
    return cid_string(parse_cid(cid))


def _parse_version(text: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", text)
    if not match:
        raise DaemonUnavailableError(f"the daemon reports an unreadable version {text!r}")
    return tuple(int(part) for part in match.groups())


def client_address(api: str) -> str:
    """The multiaddr ``api`` as ipfshttpclient takes it, its protocol spelt out; ConfigurationError
    "'API' is not a daemon address: ..." for one the client refuses."""
    address = api.rstrip("/")
    if not address.endswith(("/http", "/https")):  # the client wants the protocol spelt out
        address += "/http"
    try:
        http_common.multiaddr_to_url_data(address, "/api/v0")  # the client's own check, without a client
    except rpc_errors.AddressError:
        # Not the client's words: they quote the address with the /http added above.
        raise ConfigurationError(f"{api!r} is not a daemon address: expected a multiaddr such as "
                                 "/ip4/127.0.0.1/tcp/5001") from None
    return address


class KuboStore(ContentStore):
    """A content store backed by an IPFS daemon at a multiaddr such as ``/ip4/127.0.0.1/tcp/5001``."""

    def __init__(self, api: str, *, timeout: float = 60.0, deadline: float | None = DEFAULT_DEADLINE) -> None:
        """``timeout``: seconds any one read may wait; ``deadline``: seconds the daemon may spend
        sending one answer (None: no limit), file contents included."""
        if deadline is not None and not deadline > 0:
            raise ConfigurationError(f"deadline is a number of seconds above 0, or None, not {deadline!r}")
        self.api = api  # as given: what the messages name
        try:
            address = client_address(api)
        except ConfigurationError as exc:
            raise DaemonUnavailableError(str(exc)) from None
        self.timeout = timeout
        self.deadline = deadline
        self._client = ipfshttpclient.Client(address, timeout=timeout)
        # Every answer is read through _BoundedAnswer. ipfshttpclient (pinned at 0.7.0) makes a
        # requests.Session per call from these attributes; a response hook is requests' own way in.
        self._client._client._session_props["hooks"] = {"response": [self._bound]}
        self.implementation, self.version = self._check_version()

    def __repr__(self) -> str:
        return f"KuboStore({self.api!r})"

    def close(self) -> None:
        """Close the HTTP session."""
        self._client.close()

    def _bound(self, response: requests.Response, **_kwargs: Any) -> requests.Response:
        """requests' response hook: the answer's body, read against this store's deadline and cap."""
        path = urllib.parse.urlsplit(response.url).path.removeprefix("/api/v0")
        limit = None if path in _UNCAPPED else MAX_ANSWER_BYTES
        response.raw = _BoundedAnswer(response.raw, api=self.api, path=path, deadline=self.deadline, limit=limit)
        return response

    def _check_version(self) -> tuple[str, tuple[int, ...]]:
        info = _json(self._call(self._client.version))
        if not isinstance(info, Mapping):
            raise DaemonUnavailableError(f"{self.api} is no IPFS daemon: /version answered {_shown(info)}")
        implementation = "js-ipfs" if "ipfs-core" in info else "kubo"
        version = _parse_version(str(info.get("Version", "")))
        minimum = MINIMUM_VERSIONS[implementation]
        if version < minimum:
            raise DaemonUnavailableError(
                f"{implementation} {'.'.join(map(str, version))} at {self.api} is older than the "
                f"{'.'.join(map(str, minimum))} this store needs"
            )
        return implementation, version

    def _call(self, method: Any, *args: Any, cid: str | None = None, **kwargs: Any) -> Any:
        """Run one RPC and translate the client's errors into ours."""
        try:
            return method(*args, **kwargs)
        except rpc_errors.TimeoutError as exc:
            raise DaemonUnavailableError(f"{self.api} gave no answer within {self.timeout} s") from exc
        except rpc_errors.ConnectionError as exc:
            raise DaemonUnavailableError(f"no IPFS daemon answers at {self.api}: {_connection_failure(exc)}") from exc
        except rpc_errors.ErrorResponse as exc:
            if cid is not None and _NOT_FOUND.search(str(exc)):
                raise BlockMissingError(cid) from exc
            raise ContentStoreError(f"{self.api}: {exc}") from exc
        except rpc_errors.Error as exc:
            raise ContentStoreError(f"{self.api}: {exc}") from exc
        except requests.RequestException as exc:  # ipfshttpclient wraps only the request, not reading its answer
            raise DaemonUnavailableError(f"{self.api} broke off its answer: {_connection_failure(exc)}") from exc

    def _answer(self, reply: Any, path: str, *keys: str) -> Any:
        """``reply[keys[0]][keys[1]]...`` of a daemon's JSON answer to ``path``.

        A daemon (or whatever listens there) that answered another shape is a ContentStoreError
        naming the call: a list, a missing "Hash" or a CID that is no text were a TypeError, a
        KeyError or an AttributeError (exit 70).
        """
        value = _json(reply)
        for key in keys:
            if not isinstance(value, Mapping) or key not in value:
                raise ContentStoreError(f"{self.api}: {path} answered without {'.'.join(keys)}: {_shown(reply)}")
            value = value[key]
        return value

    def _answer_cid(self, reply: Any, path: str, *keys: str) -> str:
        """As :meth:`_answer`, a CID, in this package's text form."""
        value = self._answer(reply, path, *keys)
        try:
            if not isinstance(value, str):
                raise InvalidCIDError(f"not a CID: {_shown(value)}")
            return _normalise(value)
        except InvalidCIDError as exc:
            raise ContentStoreError(f"{self.api}: {path} answered a {'.'.join(keys)} that is {exc}") from exc

    def _stream(self, stream: Any, path: str) -> Iterator[Any]:
        """The chunks (or JSON objects) of a streamed answer; a daemon that breaks off is a DaemonUnavailableError
        (it was "cannot write the file" of export-car's output: requests' errors are OSErrors)."""
        with contextlib.closing(stream):
            while True:
                try:
                    chunk = next(stream)
                except StopIteration:
                    return
                except (rpc_errors.Error, requests.RequestException) as exc:
                    raise DaemonUnavailableError(f"{self.api} broke off {path}: {_connection_failure(exc)}") from exc
                yield chunk

    def _request(
        self, path: str, *args: str, cid: str | None = None, opts: dict[str, str] | None = None, **kwargs: Any
    ) -> Any:
        """A raw RPC; one about content also carries a daemon-side timeout, shorter than ours,
        so a CID nobody serves comes back as ``BlockMissingError`` rather than a dead daemon.
        (ipfshttpclient 0.7 wraps neither `dag export`/`import` nor a streaming cat.)"""
        if cid is not None:
            opts = {"timeout": f"{self.timeout * 0.8:.3f}s", **(opts or {})}
        return self._call(self._client._client.request, path, args, cid=cid, opts=opts or {}, **kwargs)

    # --- adding -------------------------------------------------------------------

    def _add(self, source: Any, cid_version: int, only_hash: bool) -> str:
        if cid_version not in (0, 1):
            raise ValueError(f"cid_version is 0 or 1, not {cid_version!r}")
        options: dict[str, Any] = {"cid_version": 1, "raw_leaves": True} if cid_version == 1 else {}
        result = self._call(self._client.add, source, only_hash=only_hash, pin=not only_hash, **options)
        return self._answer_cid(result, "/add", "Hash")

    def add_bytes(self, data: bytes, cid_version: int = 0) -> str:
        """Add ``data`` through the daemon, pin it, and return its CID."""
        return self._add(io.BytesIO(data), cid_version, only_hash=False)

    def add_file(self, path: StrPath, cid_version: int = 0, only_hash: bool = False) -> str:
        """Stream a file to the daemon (bounded memory) and return its CID."""
        open_regular_file(path, what="add the file").close()  # the client would read a FIFO without end
        return self._add(os.fspath(path), cid_version, only_hash=only_hash)

    # --- reading ------------------------------------------------------------------

    def cat_stream(self, cid: str) -> Iterator[bytes]:
        """The file's bytes as the daemon streams them."""
        name = _normalise(cid)
        yield from self._stream(self._request("/cat", name, cid=name, stream=True), f"/cat {name}")

    def has(self, cid: str) -> bool:
        """Whether the daemon holds the root block locally (it is not asked to search)."""
        name = _normalise(cid)
        try:
            # kubo honours `offline`; js-ipfs ignores it, so the short timeout decides there.
            local_only = {"offline": "true", "timeout": f"{HAS_TIMEOUT}s"}
            self._request("/block/stat", name, cid=name, decoder="json", opts=local_only)
        except BlockMissingError:
            return False
        return True

    def stat(self, cid: str) -> dict[str, Any]:
        """``files stat`` of ``/ipfs/<cid>``, under this package's names."""
        name = _normalise(cid)
        reply = self._request("/files/stat", f"/ipfs/{name}", cid=name, decoder="json")
        info = reply[0] if isinstance(reply, list) and reply else reply
        figures: dict[str, Any] = {"cid": self._answer_cid(info, "/files/stat", "Hash"),
                                   "type": self._answer(info, "/files/stat", "Type")}
        for key, field in (("size", "Size"), ("cumulative_size", "CumulativeSize"), ("links", "Blocks")):
            try:
                figures[key] = int(self._answer(info, "/files/stat", field))
            except (TypeError, ValueError):
                raise ContentStoreError(f"{self.api}: /files/stat answered a {field} that is no number: "
                                        f"{_shown(info)}") from None
        return figures

    # --- pins and garbage collection ---------------------------------------------

    def pin(self, cid: str) -> None:
        """Pin recursively on the daemon (which may fetch missing blocks first)."""
        name = _normalise(cid)
        self._request("/pin/add", name, cid=name, decoder="json")

    def unpin(self, cid: str) -> None:
        """Drop the daemon's recursive pin on ``cid``."""
        name = _normalise(cid)
        try:
            self._call(self._client.pin.rm, name)
        except DaemonUnavailableError:
            raise
        except ContentStoreError as exc:
            raise ContentStoreError(f"{name} is not pinned ({exc})") from exc

    def gc(self) -> int:
        """Run the daemon's ``repo gc``; return how many blocks it removed."""
        # Read an object at a time: the daemon answers one per removed block.
        removed = 0
        for item in self._stream(self._request("/repo/gc", decoder="json", stream=True), "/repo/gc"):
            if not isinstance(item, Mapping):
                raise ContentStoreError(f"{self.api}: /repo/gc answered {_shown(item)}, not a list of objects")
            removed += bool(item.get("Key") and not item.get("Error"))
        return removed

    # --- CAR files ----------------------------------------------------------------

    def export_car(self, cid: str, out_path: StrPath) -> None:
        """``dag export`` into ``out_path``, written whole or not at all."""
        name = _normalise(cid)
        with atomic_output(out_path) as handle:
            for chunk in self._stream(self._request("/dag/export", name, cid=name, stream=True), f"/dag/export {name}"):
                handle.write(chunk)
            handle.flush()
            with open(handle.name, "rb") as written:
                missing = missing_blocks(written) if handle.tell() else [parse_cid(name)]
            if missing:
                raise BlockMissingError(cid_string(missing[0]))

    def import_car(self, in_path: StrPath) -> list[str]:
        """``dag import`` a CAR file (the daemon pins its roots); return the roots.

        The file is read and every block checked here first: the daemon stores blocks as they
        arrive, so a CAR it rejected half-way would leave its first blocks behind.
        """
        try:
            with car_file(in_path) as stream:
                listed, blocks = read_car(stream)
                require_roots(listed)
                for _block in blocks:
                    pass
        except OSError as exc:
            raise StorageError.from_os_error(exc, "read the CAR file", in_path) from None
        body, headers = multipart.stream_files(os.fspath(in_path), chunk_size=1024 * 1024)
        try:
            replies = self._request(
                "/dag/import", data=body, headers=headers, decoder="json", opts={"pin-roots": "true"}
            )
        except DaemonUnavailableError:
            raise
        except ContentStoreError as exc:
            raise CarFormatError(f"the daemon refused the CAR file {in_path}: {exc}") from exc
        roots = []
        for reply in replies if isinstance(replies, list) else [replies]:
            if not isinstance(reply, Mapping) or "Root" not in reply:  # kubo also answers stats
                continue
            cid = self._answer_cid(reply, "/dag/import", "Root", "Cid", "/")
            error = reply["Root"].get("PinErrorMsg")
            if error:
                raise CarFormatError(f"{in_path}: root {cid} not pinned: {error}")
            roots.append(cid)
        return roots
