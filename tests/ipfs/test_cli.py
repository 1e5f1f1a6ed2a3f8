"""``enerdatx ipfs ...`` and ``enerdatx bench ipfs`` end to end, in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from enerdatx.cli import main
from enerdatx.ipfs import EmbeddedStore

from .conftest import http_answer
from .sample import sample_bytes, write_sample

HELLO_V0 = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
HELLO_V1 = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ENERDATX_IPFS_API", raising=False)
    monkeypatch.setenv("ENERDATX_IPFS_REPO", str(tmp_path / "env-repo"))


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, bytes]:
    code = main(list(argv))
    out, err = capsysbinary.readouterr()
    return code, out, err


def test_add_cat_export_import(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    repo = str(tmp_path / "repo")
    assert run(capsysbinary, "ipfs", "--repo", repo, "add", str(hello)) == (0, HELLO_V0.encode() + b"\n", b"")
    assert run(capsysbinary, "ipfs", "--repo", repo, "add", "--cid-version", "1", "-q", str(hello))[1] == (
        HELLO_V1.encode() + b"\n"
    )
    assert run(capsysbinary, "ipfs", "--repo", repo, "cat", HELLO_V0)[1] == b"hello world\n"
    car = tmp_path / "hello.car"
    assert run(capsysbinary, "ipfs", "--repo", repo, "export-car", HELLO_V0, str(car))[0] == 0
    # No --repo: $ENERDATX_IPFS_REPO is the store.
    assert run(capsysbinary, "ipfs", "import-car", str(car))[1] == HELLO_V0.encode() + b"\n"
    assert EmbeddedStore(tmp_path / "env-repo").pins() == {HELLO_V0}
    assert run(capsysbinary, "ipfs", "cat", HELLO_V0)[1] == b"hello world\n"


def test_only_hash_stores_nothing(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    path = write_sample(tmp_path, 300_000)
    code, out, _ = run(capsysbinary, "ipfs", "--repo", str(tmp_path / "r"), "add", "--only-hash", str(path))
    assert code == 0 and out.startswith(b"Qm")
    assert list((tmp_path / "r" / "blocks").iterdir()) == []


def test_errors_are_one_line_and_exit_1(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    repo = str(tmp_path / "repo")
    code, out, err = run(capsysbinary, "ipfs", "--repo", repo, "cat", "not-a-cid")
    assert code == 1 and out == b"" and err.startswith(b"enerdatx: error: not a CID")
    code, out, err = run(capsysbinary, "ipfs", "--repo", repo, "cat", " ")  # it read "not a CID: ''"
    assert (code, out) == (1, b"") and err == b"enerdatx: error: not a CID: ' ' (a CID is text such as Qm... or bafy...)\n"
    EmbeddedStore(repo)  # an empty store
    code, _, err = run(capsysbinary, "ipfs", "--repo", repo, "cat", HELLO_V0)
    assert code == 1 and b"is not in the store" in err
    code, _, err = run(capsysbinary, "ipfs", "--repo", repo, "add", str(tmp_path / "missing"))
    assert code == 1 and b"no such file" in err
    bad_car = tmp_path / "bad.car"
    bad_car.write_bytes(sample_bytes(100))
    code, _, err = run(capsysbinary, "ipfs", "--repo", repo, "import-car", str(bad_car))
    assert code == 1 and err.count(b"\n") == 1


def test_bench_reports_every_figure_on_a_small_file(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    code, out, _ = run(capsysbinary, "bench", "ipfs", "--size-mib", "2", "--repeats", "1", "--no-kubo", "--json")
    result = json.loads(out)
    assert code == 0 and result["size_mib"] == 2 and result["cid"].startswith("Qm")
    for key in ("sha256_mb_s", "embedded_add_mb_s", "embedded_only_hash_mb_s", "embedded_cat_mb_s"):
        assert result[key] > 0, key
    assert result["kubo_add_mb_s"] is None


def test_an_explicit_repo_wins_over_the_api_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Before: $ENERDATX_IPFS_API sent every command to a daemon, --repo or not.
    monkeypatch.setenv("ENERDATX_IPFS_API", "/ip4/127.0.0.1/tcp/9")  # discard port: nobody answers
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    assert run(capsysbinary, "ipfs", "--repo", str(tmp_path / "repo"), "add", str(hello)) == (
        0, HELLO_V0.encode() + b"\n", b"")


def test_repo_and_api_together_are_refused(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ipfs", "--repo", str(tmp_path / "repo"), "--api", "/ip4/127.0.0.1/tcp/9", "cat", HELLO_V0])
    assert exit_.value.code == 2 and b"not allowed with argument" in capsysbinary.readouterr().err


def test_no_daemon_is_one_line_naming_the_address_as_given(tmp_path: Path) -> None:
    # Before: "no IPFS daemon answers at /ip4/127.0.0.1/tcp/9/http" (a suffix the user never typed),
    # after urllib3's FutureWarning about ipfshttpclient's `strict` argument, two lines of it.
    import subprocess
    import sys

    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    result = subprocess.run([sys.executable, "-m", "enerdatx", "ipfs", "--api", "/ip4/127.0.0.1/tcp/9", "add",
                             str(hello)], capture_output=True, text=True, timeout=60,
                            env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).parent.parent.parent)})
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Warning" not in result.stderr, result.stderr
    # And the reason the system gave, not urllib3's "HTTPConnectionPool(...): Max retries exceeded ...".
    assert lines[0] == "enerdatx: error: no IPFS daemon answers at /ip4/127.0.0.1/tcp/9: Connection refused", lines


def test_cat_of_an_identity_cid_is_its_inline_data(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Before: "block bafkqaaa is not in the store"; an identity CID carries its data, nothing to store.
    repo = str(tmp_path / "repo")
    EmbeddedStore(repo)  # an empty store
    assert run(capsysbinary, "ipfs", "--repo", repo, "cat", "bafkqaaa") == (0, b"", b"")  # the empty raw block
    assert run(capsysbinary, "ipfs", "--repo", repo, "cat", "bafkqac3imvwgy3zao5xxe3de") == (0, b"hello world", b"")
    from enerdatx.ipfs.blocks import parse_cid

    assert EmbeddedStore(tmp_path / "repo").blocks.has(parse_cid("bafkqaaa"))


def test_a_device_and_an_empty_car_say_what_they_are(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Before: "/dev/null: no such file", and "CAR header length None is missing or out of range".
    repo = str(tmp_path / "repo")
    code, _, err = run(capsysbinary, "ipfs", "--repo", repo, "add", "/dev/null")
    assert code == 1 and b"/dev/null: is not a regular file" in err
    empty = tmp_path / "empty.car"
    empty.write_bytes(b"")
    code, _, err = run(capsysbinary, "ipfs", "--repo", repo, "import-car", str(empty))
    assert code == 1 and err == f"enerdatx: error: {empty}: the file is empty: not a CAR file\n".encode()


@pytest.mark.parametrize("option", [["--size-mib", "0"], ["--dir", ""]])
def test_bench_refuses_an_empty_file_and_an_empty_dir(option: list[str], capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Before: --size-mib 0 reported speeds of 0.0; --dir "" worked in the current directory.
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "ipfs", *option])
    assert exit_.value.code == 2 and f"argument {option[0]}".encode() in capsysbinary.readouterr().err


@pytest.mark.parametrize(("answers", "command", "expected"), [
    ({"/api/v0/version": http_answer(b"[1, 2]")}, "add", "is no IPFS daemon: /version answered [1, 2]"),
    ({"/api/v0/add": http_answer(b"[]")}, "add", "/add answered without Hash: []"),
    ({"/api/v0/add": http_answer(b'{"Name": "x"}')}, "add", "/add answered without Hash"),
    ({"/api/v0/add": http_answer(b'{"Hash": 5}')}, "add", "/add answered a Hash that is not a CID: 5"),
    ({"/api/v0/dag/import": http_answer(b'{"Root": "x"}')}, "import-car", "/dag/import answered without Root.Cid./"),
    ({"/api/v0/dag/import": http_answer(b'{"Root": {"Cid": 5}}')}, "import-car", "answered without Root.Cid./"),
    ({"/api/v0/dag/import": http_answer(b'{"Root": {"Cid": {"/": "bogus"}}}')}, "import-car",
     "/dag/import answered a Root.Cid./ that is not a CID: 'bogus'"),
])
def test_a_daemon_answering_the_wrong_shape_is_one_line_and_exit_1(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], fake_daemon, answers: dict, command: str,
    expected: str,
) -> None:
    # Before: exit 70, "internal error: TypeError: list indices must be integers or slices, not str",
    # "KeyError: 'Hash'", "'int' object is not subscriptable", "'str' object has no attribute 'get'".
    api = fake_daemon(answers)
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    car = tmp_path / "hello.car"
    EmbeddedStore(tmp_path / "repo").export_car(EmbeddedStore(tmp_path / "repo").add_bytes(b"hello world\n"), car)
    code, out, err = run(capsysbinary, "ipfs", "--api", api, command, str(hello if command == "add" else car))
    assert (code, out) == (1, b"") and err.startswith(b"enerdatx: error: ") and err.count(b"\n") == 1, err
    assert expected.encode() in err, err


@pytest.mark.parametrize("command", ["add", "cat", "export-car"])
def test_a_daemon_breaking_off_its_answer_is_a_daemon_error_not_a_file_error(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], fake_daemon, command: str
) -> None:
    # Before: "cannot use the file: ('Connection broken: IncompleteRead(3 bytes read, 997 more expected)', ...)",
    # for export-car "x.car: cannot write the file: ..." (requests' errors are OSErrors), though no file failed.
    cut_short = http_answer(b"abc", length=1000)
    api = fake_daemon({"/api/v0/add": cut_short, "/api/v0/cat": cut_short, "/api/v0/dag/export": cut_short})
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    words = {"add": [str(hello)], "cat": [HELLO_V0], "export-car": [HELLO_V0, str(tmp_path / "x.car")]}[command]
    code, _, err = run(capsysbinary, "ipfs", "--api", api, command, *words)
    assert code == 1 and err.count(b"\n") == 1 and f"enerdatx: error: {api} broke off".encode() in err, err
    assert b"cannot use the file" not in err and b"cannot write the file" not in err
    assert not (tmp_path / "x.car").exists()


def test_adding_a_symlink_loop_names_the_loop(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # exists() is false for a loop: "loop: no such file" was said of a file that is there.
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    code, out, err = run(capsysbinary, "ipfs", "--repo", str(tmp_path / "repo"), "add", str(tmp_path / "a"))
    assert (code, out) == (1, b"") and err == f"enerdatx: error: {tmp_path / 'a'}: Too many levels of symbolic links\n".encode()


def test_importing_a_pipe_is_refused_not_waited_on(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    # Before: open() of a FIFO nobody writes to blocked forever (add refused it already).
    import os
    import threading

    fifo = tmp_path / "car.fifo"
    os.mkfifo(fifo)
    timer = threading.Timer(5, lambda: os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)))  # unblocks a hang
    timer.start()
    try:
        code, out, err = run(capsysbinary, "ipfs", "--repo", str(tmp_path / "repo"), "import-car", str(fifo))
    finally:
        timer.cancel()
    assert (code, out) == (1, b"")
    assert err == f"enerdatx: error: {fifo}: is not a regular file (a device, a pipe or a socket)\n".encode()


@pytest.mark.parametrize(("value", "expected"), [
    (" ", "$ENERDATX_IPFS_API is blank (' '): set it to a multiaddr such as /ip4/127.0.0.1/tcp/5001 or "
          "http://127.0.0.1:5001, or unset it for the embedded store"),
    ("\t\n", "$ENERDATX_IPFS_API is blank ('\\t\\n')"),
    ("garbage", "$ENERDATX_IPFS_API: expected a multiaddr such as /ip4/127.0.0.1/tcp/5001 or http://127.0.0.1:5001, "
                "got 'garbage'"),
    ("/ip4/127.0.0.1/garbage", "$ENERDATX_IPFS_API: expected a multiaddr such as /ip4/127.0.0.1/tcp/5001 or "
                               "http://127.0.0.1:5001, got '/ip4/127.0.0.1/garbage'"),
    # As --api takes it (it was "Unsupported Multiaddr pattern: 'http://127.0.0.1:9/http'").
    ("http://127.0.0.1:9", "no IPFS daemon answers at /ip4/127.0.0.1/tcp/9/http: Connection refused"),
])
def test_the_api_variable_is_read_as_the_option_is(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch, value: str,
    expected: str,
) -> None:
    # Before: " " was "' ' is not a daemon address: Unsupported Multiaddr pattern: ' /http'".
    monkeypatch.setenv("ENERDATX_IPFS_API", value)
    code, out, err = run(capsysbinary, "ipfs", "cat", HELLO_V0)
    assert (code, out) == (1, b"") and err.startswith(f"enerdatx: error: {expected}".encode()), err
    assert err.count(b"\n") == 1


def test_an_empty_api_variable_is_unset(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENERDATX_IPFS_API", "")
    hello = tmp_path / "hello.txt"
    hello.write_bytes(b"hello world\n")
    assert run(capsysbinary, "ipfs", "add", "-q", str(hello)) == (0, HELLO_V0.encode() + b"\n", b"")


@pytest.mark.parametrize("where", ["--repo", "$ENERDATX_IPFS_REPO"])
def test_cat_from_a_store_that_is_not_there_makes_none(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    # A --repo with a typo became a new, empty store, and the answer "block ... is not in the store".
    typo = tmp_path / "reop"
    options = ["--repo", str(typo)] if where == "--repo" else []
    monkeypatch.setenv("ENERDATX_IPFS_REPO", str(typo))
    code, out, err = run(capsysbinary, "ipfs", *options, "cat", HELLO_V0)
    assert (code, out) == (1, b"")
    assert err == f"enerdatx: error: {typo}: no content store there to read from (ipfs add or import-car makes one)\n".encode()
    assert list(tmp_path.iterdir()) == []
