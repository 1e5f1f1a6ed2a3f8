"""The argument types the commands share: what they accept, and that they refuse the rest."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys

import pytest

from enerdatx.bench.limits import MAX_LOCAL_WORKERS, count, workers
from enerdatx.cli import build_parser, chosen_command
from enerdatx.cli.bench import BENCHMARKS
from enerdatx.cli.ipfs import parse_api
from enerdatx.cli.peer import parse_block_type, parse_contact, parse_directory
from enerdatx.crypto import Identity


@pytest.mark.parametrize("text, value", [("1", 1), ("10", 10), ("0010", 10)])
def test_a_count_takes_whole_numbers_in_range(text: str, value: int) -> None:
    assert count(1, 10)(text) == value


@pytest.mark.parametrize("text", ["0", "-1", "11", "1e3", "1.0", "", " ", "nan", "٣", "9" * 1000])
def test_a_count_refuses_the_rest(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="whole number from 1 to 10"):
        count(1, 10)(text)


def test_a_count_may_start_at_zero() -> None:
    assert count(0, 64)("0") == 0


def test_workers_go_up_to_four_per_cpu() -> None:
    assert workers("0") == 0 and workers(str(MAX_LOCAL_WORKERS)) == MAX_LOCAL_WORKERS
    with pytest.raises(argparse.ArgumentTypeError, match=rf"at most {MAX_LOCAL_WORKERS} on this machine \(4 per CPU\)"):
        workers(str(MAX_LOCAL_WORKERS + 1))
    with pytest.raises(argparse.ArgumentTypeError, match="whole number"):
        workers("-1")


@pytest.mark.parametrize("name", ["market", "fraud"])
def test_too_many_workers_are_refused_when_the_options_are_read(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: bench market ran its whole single-process part first, and bench fraud started a
    # process, and both then said "workers must be ..." without the option's dashes.
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["bench", name, "--workers", str(MAX_LOCAL_WORKERS + 1)])
    assert exit_.value.code == 2
    assert f"--workers: at most {MAX_LOCAL_WORKERS} on this machine (4 per CPU)" in capsys.readouterr().err


@pytest.mark.parametrize("text, multiaddr", [
    ("/ip4/127.0.0.1/tcp/5001", "/ip4/127.0.0.1/tcp/5001"),
    ("http://127.0.0.1:5001", "/ip4/127.0.0.1/tcp/5001/http"),
    ("http://127.0.0.1:5001/", "/ip4/127.0.0.1/tcp/5001/http"),
    ("https://[::1]:5001", "/ip6/::1/tcp/5001/https"),
    ("http://localhost:5001", "/dns/localhost/tcp/5001/http"),
])
def test_the_api_address_is_a_multiaddr_or_a_url(text: str, multiaddr: str) -> None:
    assert parse_api(text) == multiaddr


@pytest.mark.parametrize("text", ["localhost:5001", "http://127.0.0.1", "http://127.0.0.1:99999",
                                  "ftp://127.0.0.1:21", "http://127.0.0.1:5001/api/v0", "",
                                  "http://[::1", "http://[::1:5001"])  # urlsplit's ValueError: "invalid parse_api value"
def test_other_api_addresses_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="multiaddr"):
        parse_api(text)


@pytest.mark.parametrize("text", ["/ip4/999.0.0.1/tcp/5001", "/ip4/127.0.0.1/garbage", "/ip4/127.0.0.1/udp/5001",
                                  "/ip4/127.0.0.1/tcp/99999", "/dns/localhost/tcp/5001/ws"])
def test_a_multiaddr_the_client_cannot_use_is_refused_as_the_option_is_read(text: str) -> None:
    # They got past --api and failed once the command ran: "is not a daemon address" (exit 1).
    with pytest.raises(argparse.ArgumentTypeError, match=f"expected a multiaddr .*, got '{re.escape(text)}'$"):
        parse_api(text)


@pytest.mark.parametrize("text", ["http://user:secret@127.0.0.1:5001", "http://user@127.0.0.1:5001",
                                  "http://127.0.0.1:5001?offline=true", "http://127.0.0.1:5001#api"])
def test_an_api_url_with_more_than_the_multiaddr_holds_is_refused(text: str) -> None:
    # The user, the password and the query were dropped without a word: the daemon never got them.
    with pytest.raises(argparse.ArgumentTypeError, match="without a user, a password, a query or a fragment"):
        parse_api(text)


@pytest.mark.parametrize("text", ["", "   ", "a\x00b"])
def test_an_empty_directory_argument_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="directory path"):
        parse_directory(text)


def test_a_block_type_follows_the_encoding_rule() -> None:
    assert parse_block_type("edx.payment") == "edx.payment"
    for bad in ("", "x" * 65, "caf\u00e9", "tab\there"):
        with pytest.raises(argparse.ArgumentTypeError, match="block type"):
            parse_block_type(bad)


@pytest.mark.parametrize("key", ["ab" * 32, "00" * 32])
def test_a_contact_key_that_is_no_ed25519_key_is_refused(key: str) -> None:
    # 64 hex digits were enough: `peer recover --contact` then died with libsodium's "RuntimeError:
    # Unexpected library error" (exit 70), `peer run` when it first sent to the contact.
    from enerdatx.errors import EncodingError
    from enerdatx.trustchain.keys import ipv8_public_key_bin

    with pytest.raises(argparse.ArgumentTypeError, match="not an Ed25519 public key"):
        parse_contact(f"{key}@127.0.0.1:7759")
    with pytest.raises(EncodingError, match="not an Ed25519 public key"):
        ipv8_public_key_bin(bytes.fromhex(key))
    real = Identity.generate().public_key
    assert parse_contact(f"{real.hex()}@127.0.0.1:7759")[0] == real


def test_a_device_without_oehu_is_refused_before_the_peer_starts(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    # It was ignored: the peer ran without the meter data the user asked for.
    from enerdatx.cli import main  # noqa: PLC0415 - the parser tests above need no command

    directory = tmp_path / "peer"
    with pytest.raises(SystemExit, match="--device names the OEHU device to poll: it goes with --oehu URL"):
        main(["peer", "run", "--dir", str(directory), "--device", "pi-1"])
    assert not directory.exists()  # refused before anything was created


def test_a_meter_source_is_a_file_a_pipe_or_an_address(tmp_path) -> None:
    from enerdatx.cli.peer import parse_meter_source

    (tmp_path / "p1.txt").write_text("")
    os.mkfifo(tmp_path / "p1.fifo")  # ``cat /dev/ttyUSB0 > p1.fifo`` on the Pi
    for text in (str(tmp_path / "p1.txt"), str(tmp_path / "p1.fifo"), "tcp://127.0.0.1:2001", "serial:/dev/ttyUSB0"):
        assert parse_meter_source(text) == text
    with pytest.raises(argparse.ArgumentTypeError, match="no such file"):
        parse_meter_source(str(tmp_path / "absent.txt"))
    with pytest.raises(argparse.ArgumentTypeError, match="is a directory"):
        parse_meter_source(str(tmp_path))
    for blank in ("", "  "):  # was ": is a directory (a source is ...)", of the current directory
        with pytest.raises(argparse.ArgumentTypeError,
                           match=f"^expected tcp://HOST:PORT, serial:PORT or a FILE, got '{blank}'$"):
            parse_meter_source(blank)


@pytest.mark.parametrize("words", [
    ["ipfs", "add", ""], ["ipfs", "add", " "], ["ipfs", "import-car", ""], ["ipfs", "export-car", "Qm", ""],
    ["peer", "run", "--dir", "{d}/p", "--offer", ""], ["peer", "run", "--dir", "{d}/p", "--offer", " "],
    ["bench", "robustness", "--only", "fraud", "--markdown", ""],  # "--markdown .: is a directory", exit 1
])
def test_an_empty_file_argument_is_a_usage_error(tmp_path, capsys, words: list[str]) -> None:
    # The OS takes "" for the current directory: ipfs add "" was ": no such file", export-car to ""
    # ".: cannot write the file: is a directory", --offer "" ".: cannot read the offer file: Is a directory".
    from enerdatx.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([word.replace("{d}", str(tmp_path)) for word in words])
    assert exit_.value.code == 2
    assert f"expected a file path, got '{words[-1]}'" in capsys.readouterr().err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("words", [
    ["meter", "synth", "--days", "1", "--out", "{d}/new/"], ["meter", "synth", "--days", "1", "--out", "{d}/new/."],
    ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "{d}/new/"], ["meter", "read", "{d}/s.csv/", "--format", "csv"],
    ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "{d}/new/"], ["ipfs", "--repo", "{d}/repo", "add", "{d}/s.csv/"],
])
def test_a_file_argument_that_names_a_directory_is_a_usage_error(tmp_path, capsys, words: list[str]) -> None:
    # Path drops a trailing "/": --out new/ wrote a file named "new", and s.csv/ read s.csv.
    from enerdatx.cli import main

    (tmp_path / "s.csv").write_text("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n")
    with pytest.raises(SystemExit) as exit_:
        main([word.replace("{d}", str(tmp_path)) for word in words])
    assert exit_.value.code == 2
    given = next(word for word in words if word.endswith(("/", "/."))).replace("{d}", str(tmp_path))
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"expected a file path, got '{given}', which names a directory")
    assert [path.name for path in tmp_path.iterdir()] == ["s.csv"]


# --- building only the command a command line names ------------------------------------

def _help(parser: argparse.ArgumentParser, words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit):
        parser.parse_args([*words, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize("words", [[], ["peer"], ["peer", "run"], ["meter", "read"], ["ipfs"], ["demo"],
                                   ["bench"], ["bench", "trustchain"], ["bench", "fraud"]])
def test_the_parser_built_for_a_command_line_is_the_full_one_there(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _help(build_parser([*words, "--help"]), words, capsys) == _help(build_parser(), words, capsys)


def test_listing_the_commands_and_benchmarks_imports_none_of_them() -> None:
    # Before: every command module was imported to build the parser, three seconds of pandas,
    # scipy and IPv8 before `enerdatx --help`, or `peer id`, could print a line.
    probe = ("import sys\nfrom enerdatx.cli import main\n"
             "for words in (['--help'], ['bench', '--help'], ['peer', '--help']):\n"
             "    try:\n        main(words)\n    except SystemExit:\n        pass\n"
             "print(sorted(m for m in ('pandas', 'scipy', 'ipv8', 'enerdatx.meter', 'enerdatx.bench.privacy') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines()[-1] == "['ipv8']"  # `peer` itself runs on IPv8


def test_each_benchmark_is_listed_with_its_docstring() -> None:
    for name, help_text in BENCHMARKS.items():
        module = importlib.import_module(f"enerdatx.bench.{name}")
        assert help_text == (module.__doc__ or "").strip().splitlines()[0], name


@pytest.mark.parametrize("words, chosen, rest", [
    ([], None, []), (["--version"], None, []), (["-h", "bench", "x"], "bench", ["x"]),
    (["peer", "run", "--dir", "d"], "peer", ["run", "--dir", "d"]), (["nonsense"], "nonsense", []),
])
def test_the_command_is_the_first_word_that_is_not_an_option(words: list[str], chosen: str | None, rest: list[str]) -> None:
    assert chosen_command(words) == (chosen, rest)


@pytest.mark.parametrize("start", ["1011-01-01", "9999-12-31", "", "1969-12-31T23:59:59Z"])
def test_an_offer_start_outside_what_an_offer_holds_is_named(tmp_path, start: str) -> None:
    # Years 1011 and 9999 failed with pandas' "Cannot convert Timestamp to nanoseconds without
    # overflow. Use `.asm8.view('i8')`..."; "" and 1969 as "start must be an integer in 0..2**53-1".
    import json

    from enerdatx.cli.peer import _offer_from_file
    from enerdatx.errors import MarketError

    offer = {"descriptor": {"kind": "electricity"}, "price": 5, "period_seconds": 3600, "start": start,
             "periods": 3, "terms": {"purpose": "x", "retention_days": 1, "resale": False}}
    path = tmp_path / "offer.json"
    path.write_text(json.dumps(offer))
    with pytest.raises(MarketError, match=f"start must be an ISO time .* from 1970-01-01 to 2262-04-11, not '{start}'"):
        _offer_from_file(None, path)  # refused before the service is asked


@pytest.mark.parametrize(("field", "value", "message"), [
    ("price", -1, "price must be an integer in 1..9007199254740991"),
    ("periods", 0, "periods must be an integer in 1..1000000"),
    ("descriptor", {"kind": "electricity", "n": float("inf")}, "not an offer file"),
])
def test_an_offer_the_market_would_refuse_is_refused_before_the_peer_is_made(tmp_path, capsys, field, value,
                                                                            message) -> None:
    # A price of -1 was refused only once the peer had started (its directory, key and market made),
    # in words that named no file.
    import json

    from enerdatx.cli import main

    offer = {"descriptor": {"kind": "electricity"}, "price": 5, "period_seconds": 3600, "start": "2026-01-01T00:00:00Z",
             "periods": 3, "terms": {"purpose": "x", "retention_days": 1, "resale": False}, field: value}
    path = tmp_path / "offer.json"
    path.write_text(json.dumps(offer))
    assert main(["peer", "run", "--dir", str(tmp_path / "peer"), "--offer", str(path)]) == 1
    error = capsys.readouterr().err
    assert f"{path}: not an offer file" in error and message in error
    assert not (tmp_path / "peer").exists()


def test_the_meter_benchmark_never_overwrites_a_file(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    # Before: --file onto an existing file (a meter recording, say) overwrote it with 60 MB of telegrams.
    recording = tmp_path / "p1.txt"
    recording.write_text("/ISK5 my own recording\n")
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["bench", "meter", "--file", str(recording)])
    assert exit_.value.code == 2
    assert "p1.txt: exists; --file names a new file for the generated telegrams" in capsys.readouterr().err
    assert recording.read_text() == "/ISK5 my own recording\n"
    assert build_parser().parse_args(["bench", "meter", "--file", str(tmp_path / "new.txt")]).file == tmp_path / "new.txt"


def test_an_argument_the_disk_cannot_look_up_is_one_line_not_a_traceback(tmp_path, capsys) -> None:
    # --meter NAME asks the disk whether NAME is a directory; a name over 255 bytes was an
    # OSError that argparse let through: a traceback.
    from enerdatx.cli import main

    too_long = "m" * 300
    assert main(["peer", "run", "--dir", str(tmp_path / "p"), "--meter", too_long]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"enerdatx: error: {too_long}: cannot use the file: the name is too long"]
    assert not (tmp_path / "p").exists()  # refused before the peer was made
