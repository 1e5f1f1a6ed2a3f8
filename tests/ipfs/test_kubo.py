"""KuboStore against stand-in daemons that answer too slowly or too much (tests/ipfs/conftest.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import BinaryIO

import pytest

from enerdatx.errors import ConfigurationError, DaemonUnavailableError
from enerdatx.ipfs import KuboStore
from enerdatx.ipfs.kubo import MAX_ANSWER_BYTES

from .conftest import http_answer

pytestmark = pytest.mark.filterwarnings("ignore:.*strict.*:FutureWarning")  # ipfshttpclient 0.7.0 on urllib3 2

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"


def trickle(out: BinaryIO) -> None:
    """Headers, then a byte every 50 ms for ever: each read gets something, so no read times out."""
    out.write(HEADERS)
    while True:
        out.write(b" ")
        out.flush()
        time.sleep(0.05)


def flood(out: BinaryIO) -> None:
    """Headers, then a body without length or end, as fast as it is read."""
    out.write(HEADERS)
    while True:
        out.write(b" " * 65536)


def run(store: KuboStore, call: str) -> None:
    if call == "add":
        store.add_bytes(b"hello world\n")
    elif call == "cat":
        for _piece in store.cat_stream(HELLO_V0):
            pass
    else:
        store.gc()


@pytest.mark.parametrize(("call", "answer"), [("add", trickle), ("cat", trickle), ("gc", trickle), ("cat", flood)])
def test_an_answer_that_never_ends_is_given_up_at_the_deadline(fake_daemon, call: str, answer) -> None:
    # Before: add and cat hung for ever on the trickle (every read got a byte within the 60 s read
    # timeout), and the flood grew the process by half a gigabyte a second.
    api = fake_daemon({f"/api/v0/{path}": answer for path in ("add", "cat", "repo/gc")})
    store = KuboStore(api, timeout=2, deadline=1)
    started = time.monotonic()
    path = {"add": "/add", "cat": "/cat", "gc": "/repo/gc"}[call]
    with pytest.raises(DaemonUnavailableError, match=f"^{api} was still sending its answer to {path} after 1 s"):
        run(store, call)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("call", ["add", "gc"])
def test_an_answer_longer_than_any_daemons_is_refused(fake_daemon, call: str) -> None:
    api = fake_daemon({"/api/v0/add": flood, "/api/v0/repo/gc": flood})
    store = KuboStore(api, timeout=2, deadline=None)  # the cap alone stops it
    started = time.monotonic()
    path = {"add": "/add", "gc": "/repo/gc"}[call]
    with pytest.raises(DaemonUnavailableError, match=f"^{api} answered {path} with more than {MAX_ANSWER_BYTES:,} bytes"):
        run(store, call)
    assert time.monotonic() - started < 2


def test_answers_within_the_bounds_still_read(fake_daemon, tmp_path: Path) -> None:
    gc_answer = b'{"Key": {"/": "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"}}\n' * 2
    api = fake_daemon({"/api/v0/add": http_answer(b'{"Hash": "%s"}' % HELLO_V0.encode()),
                       "/api/v0/cat": http_answer(b"hello world\n"),
                       "/api/v0/repo/gc": http_answer(gc_answer + b'{"Error": "busy"}\n')})
    store = KuboStore(api, timeout=2, deadline=1)
    assert store.add_bytes(b"hello world\n") == HELLO_V0
    assert store.cat(HELLO_V0) == b"hello world\n"
    assert store.gc() == 2


@pytest.mark.parametrize("deadline", [0, -1.0, float("nan")])
def test_a_deadline_is_a_positive_number_of_seconds(deadline: float) -> None:
    with pytest.raises(ConfigurationError, match="deadline is a number of seconds above 0"):
        KuboStore("/ip4/127.0.0.1/tcp/9", deadline=deadline)


def test_a_car_without_roots_is_refused_before_the_daemon_sees_it(fake_daemon, tmp_path: Path) -> None:
    # The daemon would store its blocks, pin nothing (it pins roots), and collect them at its next gc.
    from enerdatx.errors import CarFormatError
    from enerdatx.ipfs import EmbeddedStore
    from enerdatx.ipfs.blocks import parse_cid
    from enerdatx.ipfs.car import write_car

    source = EmbeddedStore(tmp_path / "source")
    blocks = list(source.walk(parse_cid(source.add_bytes(b"hello world\n"))))
    car = tmp_path / "no-roots.car"
    with open(car, "wb") as out:
        write_car(out, [], blocks)
    asked: list[str] = []

    def import_(out: BinaryIO) -> None:
        asked.append("/dag/import")
        out.write(http_answer(b"{}"))

    store = KuboStore(fake_daemon({"/api/v0/dag/import": import_}), timeout=2)
    with pytest.raises(CarFormatError, match=f"^{car}: the CAR header lists no roots, and an import pins its roots"):
        store.import_car(car)
    assert asked == []
    embedded = EmbeddedStore(tmp_path / "embedded")
    with pytest.raises(CarFormatError, match=f"^{car}: the CAR header lists no roots"):
        embedded.import_car(car)
    assert not any(path.is_file() for path in embedded.blocks.root.rglob("*"))


def test_a_fifo_is_refused_before_the_daemon_is_asked(fake_daemon, tmp_path: Path) -> None:
    # ipfshttpclient would read the FIFO until a writer came and closed it: for ever, here.
    import os

    from enerdatx.errors import StorageError

    asked: list[str] = []

    def add(out: BinaryIO) -> None:
        asked.append("/add")
        out.write(http_answer(b"{}"))

    store = KuboStore(fake_daemon({"/api/v0/add": add}), timeout=2)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(StorageError, match="cannot add the file: not a regular file"):
        store.add_file(fifo)
    with pytest.raises(FileNotFoundError, match="No such file"):
        store.add_file(tmp_path / "missing")
    assert asked == []
