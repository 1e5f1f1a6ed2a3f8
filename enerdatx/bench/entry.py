"""Entry points under bad input (issue 13): every CLI case as a process, the peer-directory
refusals, REST bodies, and the memory of reading OEHU JSON (streamed vs. the whole document).

``enerdatx bench robustness --only entry`` runs it; tests/robustness/test_cli_errors.py asserts
on the same table of CLI cases.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cbor2

# name -> (arguments, where {d} is the scratch directory, the expected exit code, text the last line must hold)
# The cases run four at a time: each that opens a peer directory has its own, or two would
# meet its lock ("in use by process") instead of the error they are about.
CLI_CASES: dict[str, tuple[list[str], int, str]] = {
    "meter read: truncated .gz": (["meter", "read", "{d}/trunc.gz", "--format", "dsmr"], 1, "Compressed file ended"),
    "meter read: a directory (dsmr)": (["meter", "read", "{d}/dir", "--format", "dsmr"], 1, "is a directory"),
    "meter read: a directory (oehu)": (["meter", "read", "{d}/dir", "--format", "oehu"], 1, "is a directory"),
    "meter read: a directory (csv)": (["meter", "read", "{d}/dir", "--format", "csv"], 1, "Is a directory"),
    # pandas buffered the endless line of NUL bytes: the read grew past 2 GB.
    "meter read: /dev/zero as CSV": (["meter", "read", "/dev/zero", "--format", "csv"], 1, "a line runs past 1,048,576 bytes"),
    "meter read: JSON 100k deep": (["meter", "read", "{d}/deep.json", "--format", "oehu"], 1, "nested deeper"),
    "meter read: a 100k-digit integer": (["meter", "read", "{d}/bigint.json", "--format", "oehu"], 1, "OEHU data"),
    # ijson's C backend (yajl2_c) words it; the message was its bytes, b'lexical error: ...\xff...'.
    "meter read: OEHU bytes that are not UTF-8": (
        ["meter", "read", "{d}/garbage.json", "--format", "oehu"], 1, "OEHU data is not JSON: lexical error"
    ),
    "meter read: --out in a missing directory": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "{d}/nowhere/x.csv"], 1,
        "cannot write the readings: no such file or directory"
    ),
    "meter read: --out onto a directory": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "{d}/dir"], 1, "is a directory"
    ),
    "meter read: --out onto a full disk": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--out", "/dev/full"], 1, "the disk is full"
    ),
    "meter read: nothing read (dsmr)": (["meter", "read", "{d}/empty.txt", "--format", "dsmr"], 1, "no readings"),
    "meter read: nothing read (oehu)": (["meter", "read", "{d}/empty.json", "--format", "oehu"], 1, "no readings"),
    "meter read: a missing file": (["meter", "read", "{d}/missing.csv", "--format", "csv"], 1, "no such file"),
    "meter read: an infinite register (csv)": (
        ["meter", "read", "{d}/inf.csv", "--format", "csv", "--json"], 1, "row 3, column import_kwh: 'inf' is not a finite"
    ),
    "meter read: a CSV of two meters": (["meter", "read", "{d}/two.csv", "--format", "csv"], 1, "choose one with --device"),
    "meter read: a --device not in the file": (
        ["meter", "read", "{d}/two.csv", "--format", "csv", "--device", "nope"], 1, "the file holds a, b"
    ),
    "meter synth: a start that is no date": (
        ["meter", "synth", "--start", "garbage", "--days", "1", "--out", "{d}/x.csv"], 1, "is not a date"
    ),
    "meter synth: --out in a missing directory": (
        ["meter", "synth", "--days", "1", "--out", "{d}/nowhere/x.csv"], 1,
        "cannot write the readings: no such file or directory"
    ),
    "meter synth: telegrams onto a directory": (
        ["meter", "synth", "--days", "1", "--telegrams", "v5", "--out", "{d}/dir"], 1,
        "cannot write the telegrams: is a directory"
    ),
    "meter synth: telegrams onto a full disk": (
        ["meter", "synth", "--days", "1", "--telegrams", "v5", "--out", "/dev/full"], 1, "the disk is full"
    ),
    "ipfs import-car: a missing file": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/no.car"], 1, "no such file"),
    "ipfs import-car: a directory": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/dir"], 1, "is a directory"),
    "ipfs import-car: not a CAR": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/s.csv"], 1, "error: "),
    "ipfs export-car: into a missing directory": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "{d}/nowhere/x.car"], 1, "no such file"
    ),
    "ipfs export-car: onto a directory": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "{d}/dir"], 1, "is a directory"
    ),
    "ipfs export-car: onto a device": (
        ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", "/dev/null"], 1, "not a regular file"
    ),
    "ipfs --repo: a file": (["ipfs", "--repo", "{d}/s.csv", "add", "{d}/s.csv"], 1, "cannot open the content store"),
    "ipfs cat: not a CID": (["ipfs", "--repo", "{d}/repo", "cat", "bogus"], 1, "not a CID"),
    "peer run: --dir is a file": (["peer", "run", "--dir", "{d}/s.csv"], 1, "not a directory"),
    "peer run: a corrupt database": (["peer", "run", "--dir", "{d}/corrupt"], 1, "cannot use the block store"),
    "peer run: an empty database for a key that signed": (
        ["peer", "run", "--dir", "{d}/emptied"], 1, "enerdatx peer recover"
    ),
    "peer run: a missing key beside a chain": (["peer", "run", "--dir", "{d}/keyless"], 1, "identity.key is missing"),
    "peer run: an address not on this machine": (
        ["peer", "run", "--dir", "{d}/p-bind", "--host", "192.0.2.1"], 1, "cannot listen on 192.0.2.1"
    ),
    "peer id: --dir is a file": (["peer", "id", "--dir", "{d}/s.csv"], 1, "not a directory"),
    "peer backup: not a peer directory": (["peer", "backup", "--dir", "{d}/dir", "--out", "{d}/b"], 1, "not a peer"),
    "peer backup: --out inside the peer directory": (
        ["peer", "backup", "--dir", "{d}/p-backup", "--out", "{d}/p-backup/backup"], 1, "inside the peer directory"),
    "peer recover: no key": (["peer", "recover", "--dir", "{d}/dir", "--peer", "127.0.0.1:9"], 1, "no identity.key"),
    "bench fraud: more peers than memory holds": (["bench", "fraud", "--peers", "100000000"], 1, "GiB are available"),
    "meter synth: a year at one-second steps": (
        ["meter", "synth", "--days", "365", "--resolution", "1s", "--out", "{d}/x.csv"], 1, "simulated steps"),
    # 1.5 s divides a day: it was accepted, and a data set cut at it claimed resolution_seconds 1.
    "meter synth: a resolution of 1.5 seconds": (
        ["meter", "synth", "--days", "1", "--resolution", "1.5s", "--out", "{d}/x.csv"], 1,
        "must be whole seconds dividing a day"),
    "meter synth: past the last date pandas holds": (
        ["meter", "synth", "--start", "2262-04-01", "--days", "30", "--out", "{d}/x.csv"], 1, "past the last date"),
    "ipfs add: a directory": (["ipfs", "--repo", "{d}/repo", "add", "{d}/dir"], 1, "is a directory"),
    "ipfs add: a device": (["ipfs", "--repo", "{d}/repo", "add", "/dev/null"], 1, "is not a regular file"),
    "ipfs import-car: an empty file": (
        ["ipfs", "--repo", "{d}/repo", "import-car", "{d}/empty.txt"], 1, "the file is empty: not a CAR file"),
    "peer run: an offer file that is a JSON list": (
        ["peer", "run", "--dir", "{d}/p-offer-list", "--offer", "{d}/empty.json"], 1, "expected a JSON object"),
    "peer run: an offer file that is missing": (
        ["peer", "run", "--dir", "{d}/p-offer-missing", "--offer", "{d}/missing.json"], 1, "cannot read the offer file"),
    "peer run: an offer file nested 100k deep": (
        ["peer", "run", "--dir", "{d}/p-offer-deep", "--offer", "{d}/deep.json"], 1, "not an offer file"),
    "peer run: an offer with an infinite period": (
        ["peer", "run", "--dir", "{d}/p-offer-inf", "--offer", "{d}/inf-offer.json"], 1, "period_seconds must be a positive"),
    "peer run: an offer starting 'now'": (
        ["peer", "run", "--dir", "{d}/p-offer-now", "--offer", "{d}/now-offer.json"], 1, "start must be an ISO time"),
    # pandas' own words were "Cannot convert Timestamp to nanoseconds without overflow. Use `.asm8.view('i8')`".
    "peer run: an offer starting in the year 9999": (
        ["peer", "run", "--dir", "{d}/p-offer-9999", "--offer", "{d}/y9999-offer.json"], 1,
        "start must be an ISO time such as 2026-01-01T00:00:00Z, from 1970-01-01 to 2262-04-11"),
    # These two printed their message without "enerdatx: error:" (a bare SystemExit).
    "bench market: more trades than pairs": (
        ["bench", "market", "--peers", "4", "--trades", "100", "--no-progress"], 1, "--trades 100: at most 4 distinct"),
    # "about 0.0 GiB of disk needed, 0.0 GiB free" said nothing.
    "bench ipfs: no room in --dir": (
        ["bench", "ipfs", "--dir", "/proc", "--no-kubo", "--size-mib", "1"], 1, "about 3 MiB of disk needed, 0.0 MiB free"),
    "bench market: more workers than sellers": (
        ["bench", "market", "--peers", "4", "--trades", "2", "--workers", "3"], 1, "each worker needs a seller"),
    "bench robustness: --markdown onto a directory": (
        ["bench", "robustness", "--only", "fraud", "--fraud-runs", "1", "--markdown", "{d}/dir"], 1, "is a directory"),
    "bench robustness: --markdown in a missing directory": (
        ["bench", "robustness", "--only", "fraud", "--fraud-runs", "1", "--markdown", "{d}/nowhere/r.md"], 1,
        "no such directory"),
    # pandas 3 reads year 499 in microseconds; arithmetic with nanosecond times overflowed later.
    "meter read: a CSV of the year 499": (["meter", "read", "{d}/y499.csv", "--format", "csv"], 1,
                                          "timestamps must lie between 1677-09-22 and 2262-04-11"),
    "meter synth: a start in the year 499": (["meter", "synth", "--start", "0499-01-01", "--out", "{d}/y.csv"], 1,
                                             "is not a date from 1677-09-22 to 2262-04-11"),
    # Stripped, the two names were one, and table["LCLid"] a frame: an AttributeError.
    "meter read: a CSV header naming a column twice": (["meter", "read", "{d}/twice.csv", "--format", "csv"], 1,
                                                       "the header names 'LCLid' twice"),
    "meter read: a London time in US order": (["meter", "read", "{d}/us-time.csv", "--format", "csv"], 1,
                                              "unreadable timestamp '01/03/2012 00:00' at row 3"),
    "bench fraud: a network size twice": (["bench", "fraud", "--peers", "4", "4"], 1, "each size once"),
    # Round 13: pandas read UTF-16 as UTF-8 and failed on a NUL; a CAR without roots stored its
    # blocks and then had nothing to print; the copy went through the dangling link.
    "meter read: a CSV in UTF-16": (["meter", "read", "{d}/utf16.csv", "--format", "csv"], 1,
                                    "is UTF-16 text (it begins with a UTF-16 byte-order mark)"),
    "ipfs import-car: a CAR without roots": (["ipfs", "--repo", "{d}/repo", "import-car", "{d}/noroots.car"], 1,
                                             "lists no roots"),
    "peer backup: --out a dangling symbolic link": (
        ["peer", "backup", "--dir", "{d}/p-backup", "--out", "{d}/dangling"], 1, "which does not exist"),
    # Round 14. The clock's time made every run other readings; a mistyped --repo was made an
    # empty store "without the block"; the CSV "needed a 'timestamp' column"; 250 and 250 ran
    # four minutes until a trade missed its payment's deadline.
    "meter synth: a start of 'now'": (["meter", "synth", "--start", "now", "--days", "1", "--out", "{d}/x.csv"], 1,
                                      "start 'now' is the clock's time, not a date"),
    "ipfs cat: a --repo that is no store": (["ipfs", "--repo", "{d}/norepo", "cat", "bafkqaaa"], 1,
                                            "no content store there to read from"),
    # Round 15: export-car, too, made an empty store where --repo had a typo.
    "ipfs export-car: a --repo that is no store": (
        ["ipfs", "--repo", "{d}/norepo", "export-car", "bafkqaaa", "{d}/x.car"], 1, "no content store there to read from"),
    "meter read: a CSV separated by ';'": (["meter", "read", "{d}/semicolon.csv", "--format", "csv"], 1,
                                           "its fields are separated by ';'"),
    "demo: more peers than one process runs": (["demo", "--households", "150", "--buyers", "60", "--quiet",
                                                "--output", "{d}/demo"], 1, "the demo runs at most 200 peers"),
    "bench fraud: fewer than 4 peers per worker": (
        ["bench", "fraud", "--peers", "4", "--workers", "2"], 1, "needs at least 8 peers (4 per worker)"),
    # Round 15: an offer file that is a FIFO made the peer wait for ever before it started, and
    # /dev/zero (or a file of gigabytes) was read whole into memory.
    "peer run: an offer file that is a FIFO": (
        ["peer", "run", "--dir", "{d}/p-offer-fifo", "--offer", "{d}/fifo"], 1,
        "fifo: cannot read the offer file: not a regular file"),
    "peer run: an offer file that is /dev/zero": (
        ["peer", "run", "--dir", "{d}/p-offer-zero", "--offer", "/dev/zero"], 1,
        "/dev/zero: cannot read the offer file: not a regular file"),
    "peer run: an offer file larger than 1 MiB": (
        ["peer", "run", "--dir", "{d}/p-offer-big", "--offer", "{d}/big-offer.json"], 1,
        "big-offer.json: not an offer file: it is larger than 1,048,576 bytes"),
    # Round 15: the peer ran and never printed a reading, there being no meter to read.
    "peer run: --report-readings without a meter": (
        ["peer", "run", "--dir", "{d}/p-report", "--report-readings"], 1,
        "--report-readings prints the readings of --meter or --oehu"),
    # Round 15: with no peer to wait for, the timeout was ignored without a word.
    "peer run: --catch-up-timeout without a peer": (
        ["peer", "run", "--dir", "{d}/p-catch-up", "--catch-up-timeout", "30"], 1,
        "--catch-up-timeout is how long to wait for --peer or --contact at start"),
    # Round 15: options that do not go together were refused with exit 2, argparse's code for one
    # bad argument, where every other command's refusal of a combination exits 1.
    "meter read: --start without --interval": (
        ["meter", "read", "{d}/empty.txt", "--format", "dsmr", "--start", "2026-01-01"], 1,
        "--start and --interval go together"),
    "meter read: --progress for a CSV": (
        ["meter", "read", "{d}/s.csv", "--format", "csv", "--progress"], 1, "--progress shows a bar for DSMR"),
    "meter read: --device for DSMR telegrams": (
        ["meter", "read", "{d}/empty.txt", "--format", "dsmr", "--device", "a"], 1, "--device chooses a meter"),
    "meter synth: --gas for telegrams without gas": (
        ["meter", "synth", "--days", "1", "--gas", "--telegrams", "sweden", "--out", "{d}/x.txt"], 1,
        "sweden telegrams carry no gas register"),
}
# argparse errors (exit 2) print the usage, then one error line.
USAGE_CASES: dict[str, list[str]] = {
    "peer run: a port out of range": ["peer", "run", "--dir", "{d}/p", "--port", "99999"],
    "peer run: a negative port": ["peer", "run", "--dir", "{d}/p", "--port", "-5"],
    "peer run: an empty --host (every interface)": ["peer", "run", "--dir", "{d}/p", "--host", ""],
    "peer run: a port in non-ASCII digits": ["peer", "run", "--dir", "{d}/p", "--peer", "127.0.0.1:\u0663\u0663"],
    "meter read: an unknown format": ["meter", "read", "{d}/s.csv", "--format", "xml"],
    # The byte 0xff in argv: Python passes it on as a lone surrogate, which UTF-8 cannot encode.
    "meter synth: a --location that is not UTF-8": ["meter", "synth", "--location", "\udcff", "--out", "{d}/x.csv"],
    "meter read: telegrams 1e-12 s apart": [
        "meter", "read", "{d}/empty.txt", "--format", "dsmr", "--start", "2026-01-01", "--interval", "1e-12"],
    "meter read: telegrams 1e300 s apart": [
        "meter", "read", "{d}/empty.txt", "--format", "dsmr", "--start", "2026-01-01", "--interval", "1e300"],
    "peer recover: a timeout of NaN": ["peer", "recover", "--dir", "{d}/p", "--peer", "127.0.0.1:9", "--timeout", "nan"],
    "demo: too many peers": ["demo", "--households", "10000000", "--quiet", "--output", "{d}/demo"],
    "demo: no household": ["demo", "--households", "0", "--quiet", "--output", "{d}/demo"],
    "demo: --output is a file": ["demo", "--quiet", "--output", "{d}/s.csv"],
    "peer run: a meter address without a port": ["peer", "run", "--dir", "{d}/p", "--meter", "tcp://nohost"],
    "peer run: a meter file that is missing": ["peer", "run", "--dir", "{d}/p", "--meter", "{d}/missing.txt"],
    "peer run: an OEHU URL without a scheme": ["peer", "run", "--dir", "{d}/p", "--oehu", "notaurl", "--device", "x"],
    # An empty path is the current directory to the OS: a peer (or a content store) would be made there.
    "peer run: an empty --dir": ["peer", "run", "--dir", ""],
    "peer backup: an empty --out": ["peer", "backup", "--dir", "{d}/emptied", "--out", ""],
    "ipfs: an empty --repo": ["ipfs", "--repo", "", "add", "{d}/s.csv"],
    "ipfs: an --api that is neither a multiaddr nor a URL": ["ipfs", "--api", "localhost 5001", "add", "{d}/s.csv"],
    "ipfs: --repo and --api at once": ["ipfs", "--repo", "{d}/repo", "--api", "/ip4/127.0.0.1/tcp/9", "add", "{d}/s.csv"],
    "peer run: an empty --accept type": ["peer", "run", "--dir", "{d}/p", "--accept", ""],
    "peer run: an empty --offer file": ["peer", "run", "--dir", "{d}/p", "--offer", ""],
    "ipfs add: an empty file argument": ["ipfs", "--repo", "{d}/repo", "add", ""],
    "ipfs export-car: an empty output argument": ["ipfs", "--repo", "{d}/repo", "export-car", "bafkqaaa", ""],
    "ipfs: an --api URL cut short": ["ipfs", "--api", "http://[::1", "add", "{d}/s.csv"],
    # Round 14: each was found only once the command ran, or not at all (--out new/ wrote "new",
    # the user and password were dropped, a summary.json that is a directory failed after the demo).
    "ipfs: an --api multiaddr with no such address": ["ipfs", "--api", "/ip4/999.0.0.1/tcp/5001", "add", "{d}/s.csv"],
    "ipfs: an --api URL with a user and password": ["ipfs", "--api", "http://u:p@127.0.0.1:1", "add", "{d}/s.csv"],
    "meter synth: a blank --location": ["meter", "synth", "--location", " ", "--out", "{d}/x.csv"],
    "meter synth: --out naming a directory": ["meter", "synth", "--days", "1", "--out", "{d}/new/"],
    "meter synth: no days": ["meter", "synth", "--days", "0", "--out", "{d}/x.csv"],
    "meter read: a meter address without host or port": ["meter", "read", "tcp://:", "--format", "dsmr"],
    "demo: --output holding a directory named summary.json": ["demo", "--quiet", "--output", "{d}/demo-sum"],
    # Bytes of argv that are not UTF-8 (lone surrogates): the socket's codec failed (exit 70), and
    # an OEHU device id killed the meter thread with a traceback while the peer ran on.
    "peer run: a --host that is not UTF-8": ["peer", "run", "--dir", "{d}/p", "--host", "\udcff"],
    "peer run: an OEHU --device that is not UTF-8": [
        "peer", "run", "--dir", "{d}/p", "--oehu", "http://127.0.0.1:9", "--device", "\udcff"],
    "bench trustchain: no transactions": ["bench", "trustchain", "--transactions", "0"],
    "bench network: no transactions": ["bench", "network", "--transactions", "0"],
    "bench meter: no baseline telegrams": ["bench", "meter", "--baseline", "0"],
    "bench meter: fewer telegrams than one interval": ["bench", "meter", "--telegrams", "90"],
    "bench meter: --file onto a directory": ["bench", "meter", "--file", "{d}/dir"],
    "bench meter: --file in a missing directory": ["bench", "meter", "--file", "{d}/nowhere/p1.txt"],
    "bench meter: --file that exists": ["bench", "meter", "--file", "{d}/s.csv"],
    "bench robustness: negative kills": ["bench", "robustness", "--kills", "-1"],
    "bench privacy: a union too large to finish": ["bench", "privacy", "--members", "100000000"],
    "bench ipfs: no repeats": ["bench", "ipfs", "--repeats", "0"],
    "bench ipfs: a file of 0 MiB": ["bench", "ipfs", "--size-mib", "0"],
    "bench ipfs: an empty --dir (the current directory)": ["bench", "ipfs", "--dir", ""],
    "bench reputation: no repeats": ["bench", "reputation", "--repeat", "0"],
    "bench subscription: more subscribers than it takes": ["bench", "subscription", "--subscribers", "100000000"],
    "bench market: a thousand-digit peer count": ["bench", "market", "--peers", "9" * 1000],
    "bench market: more workers than 4 per CPU": ["bench", "market", "--workers", "9999"],
    "bench fraud: more workers than 4 per CPU": ["bench", "fraud", "--workers", "9999"],
    "bench fraud: fewer than 4 peers": ["bench", "fraud", "--peers", "3"],
    "bench fraud: a packet loss of nan": ["bench", "fraud", "--packet-loss", "nan"],
    "bench fraud: a packet loss of 1 (every packet)": ["bench", "fraud", "--packet-loss", "1"],
    # Round 15: port 0 got past --api, and the command failed later with "Connection refused".
    "ipfs: an --api multiaddr on port 0": ["ipfs", "--api", "/ip4/127.0.0.1/tcp/0", "cat", "bafkqaaa"],
    "ipfs: an --api URL on port 0": ["ipfs", "--api", "http://127.0.0.1:0", "cat", "bafkqaaa"],
    # Round 15: found inside the run, naming a temporary directory the user never gave ("s.csv/enerdatx-bench-ipfs-...").
    "bench ipfs: --dir a file": ["bench", "ipfs", "--dir", "{d}/s.csv", "--no-kubo", "--size-mib", "1"],
    "bench ipfs: --dir missing": ["bench", "ipfs", "--dir", "{d}/nowhere", "--no-kubo", "--size-mib", "1"],
}


def write_scratch(directory: Path) -> None:
    """The files the cases name: a directory, bad and empty inputs, damaged peer directories."""
    from enerdatx.crypto import Identity
    from enerdatx.datadir import mark_head, open_directory
    from enerdatx.ipfs import EmbeddedStore
    from enerdatx.meter import render_telegrams, synthetic_household, write_csv
    from enerdatx.trustchain import TrustChain

    (directory / "dir").mkdir()
    EmbeddedStore(directory / "repo")  # the store the ipfs cases read from
    frame = synthetic_household(seed=1, days=1)
    write_csv(frame, directory / "s.csv")
    telegrams = "".join(render_telegrams(frame.iloc[:20], "v5")).encode()
    (directory / "trunc.gz").write_bytes(gzip.compress(telegrams)[:200])
    (directory / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (directory / "bigint.json").write_text('[{"deviceId": "a", "metadata": {"lastUpdate": ' + "9" * 100_000 + "}}]")
    (directory / "inf.csv").write_text("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n2026-01-01T00:15:00Z,inf\n")
    (directory / "two.csv").write_text("timestamp,meter_id,import_kwh\n2026-01-01T00:00:00Z,a,1\n"
                                       "2026-01-01T00:00:00Z,b,2\n")
    (directory / "y499.csv").write_text("timestamp,import_kwh\n0499-01-01T00:00:00Z,1\n")
    (directory / "twice.csv").write_text("LCLid,tstp,\x1eLCLid,energy(kWh/hh)\nA,2012-01-01 00:00,B,1\n")
    (directory / "us-time.csv").write_text("LCLid,tstp,energy(kWh/hh)\nA,2012-01-01 00:00,1\nA,01/03/2012 00:00,1\n")
    (directory / "garbage.json").write_bytes(b"garbage\xff not json")
    (directory / "utf16.csv").write_bytes("timestamp,import_kwh\n2026-01-01T00:00:00Z,1\n".encode("utf-16"))
    # A CAR v1 header (its length as a varint, then DAG-CBOR) that lists no roots, and no blocks.
    header = cbor2.dumps({"version": 1, "roots": []}, canonical=True)
    (directory / "noroots.car").write_bytes(bytes((len(header),)) + header)
    (directory / "dangling").symlink_to(directory / "nowhere" / "backup")
    (directory / "semicolon.csv").write_text("timestamp;import_kwh\n2026-01-01T00:00:00Z;1\n")
    (directory / "demo-sum" / "summary.json").mkdir(parents=True)
    (directory / "empty.txt").write_text("")
    os.mkfifo(directory / "fifo")
    (directory / "big-offer.json").write_text(" " * (1 << 20) + "{}")
    (directory / "empty.json").write_text("[]")
    offer = {"descriptor": {"kind": "electricity", "resolution_seconds": 900, "location": "2628",
                            "household_type": "family"}, "price": 5, "period_seconds": 3600,
             "start": "2026-01-01T00:00:00Z", "periods": 3,
             "terms": {"purpose": "x", "retention_days": 1, "resale": False}}
    (directory / "inf-offer.json").write_text(json.dumps({**offer, "period_seconds": 1e308 * 10}))
    (directory / "now-offer.json").write_text(json.dumps({**offer, "start": "now"}))
    (directory / "y9999-offer.json").write_text(json.dumps({**offer, "start": "9999-12-31"}))
    (directory / "corrupt").mkdir()
    (directory / "corrupt" / "chain.sqlite").write_bytes(b"not a database" * 500)
    # With its key: without one, a database that cannot be read is refused as a lost key's chain.
    Identity.generate().save(directory / "corrupt" / "identity.key")
    for name in ("emptied", "keyless", "p-backup"):
        identity, store, lock = open_directory(directory / name, durable=False)
        TrustChain(identity, store).record("bench.entry", {"n": 1})
        mark_head(directory / name, identity, store)
        store.close()
        lock.release()
    for path in (directory / "emptied").glob("chain.sqlite*"):
        path.unlink()
    (directory / "emptied" / "chain.sqlite").write_bytes(b"")
    (directory / "keyless" / "identity.key").unlink()


def run_case(args: list[str], directory: Path) -> subprocess.CompletedProcess[str]:
    """``python -m enerdatx ARGS`` in ``directory``, {d} replaced by it."""
    argv = [arg.replace("{d}", str(directory)) for arg in args]
    return subprocess.run(
        [sys.executable, "-m", "enerdatx", *argv], capture_output=True, text=True, timeout=120, cwd=directory
    )


def run_cases(directory: Path, names: set[str] | None = None) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case (or those named), four processes at a time."""
    every = {**{name: case[0] for name, case in CLI_CASES.items()}, **USAGE_CASES}
    if names is not None:
        every = {name: args for name, args in every.items() if name in names}
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(run_case, args, directory) for name, args in every.items()}
        return {name: future.result() for name, future in futures.items()}


def cli_figures(base: Path) -> dict[str, Any]:
    """Per case: the exit code, stderr's last line, and whether a traceback was printed."""
    base.mkdir(parents=True, exist_ok=True)
    write_scratch(base)
    rows = {}
    for name, result in run_cases(base).items():
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        last = lines[-1].replace(str(base), "D") if lines else ""
        rows[name] = {"exit": result.returncode, "line": last, "traceback": "Traceback" in result.stderr}
    return rows


def oehu_memory_figures(base: Path, readings: int = 50_000) -> dict[str, Any]:
    """Peak Python heap reading an OEHU file: streamed (read_oehu) vs. json.loads of the document."""
    from enerdatx.meter import read_oehu
    from enerdatx.meter.oehu import oehu_readings

    base.mkdir(parents=True, exist_ok=True)
    path = base / "oehu.json"
    items = [
        {"deviceId": "pi-1", "metadata": {"lastUpdate": 1_560_000_000_000 + 10_000 * i},
         "electricityReceived": {"total": 1000 + i / 100, "tariff1": 500 + i / 200, "tariff2": 500 + i / 200},
         "electricityDelivered": {"total": 10.5, "tariff1": 5.25, "tariff2": 5.25}, "gasReceived": 300 + i / 1000}
        for i in range(readings)
    ]
    path.write_text(json.dumps(items))
    del items

    def peak(read: Any) -> tuple[float, int]:
        tracemalloc.start()
        frame = read()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top / 2**20, len(frame)

    streamed, rows = peak(lambda: read_oehu(path))
    whole, rows_whole = peak(lambda: oehu_readings(json.loads(path.read_text())))
    size = path.stat().st_size / 2**20
    return {"readings": rows, "file_mib": round(size, 1), "streamed_peak_mib": round(streamed, 1),
            "whole_document_peak_mib": round(whole, 1), "same_rows": rows == rows_whole}


def entry_figures(base: Path) -> dict[str, Any]:
    """The CLI table and the OEHU memory figures."""
    return {"cli": cli_figures(base / "cli"), "oehu_memory": oehu_memory_figures(base / "oehu")}


def markdown(figures: dict[str, Any]) -> list[str]:
    """The tables of docs/robustness.md, section "Entry points"."""
    out = ["| command, bad input | exit | traceback | stderr (last line) |", "| --- | ---: | --- | --- |"]
    for name, row in figures["cli"].items():
        line = row["line"].replace("|", "\\|")
        out.append(f"| {name} | {row['exit']} | {'yes' if row['traceback'] else 'no'} | `{line[:110]}` |")
    m = figures["oehu_memory"]
    out += ["", "| reading OEHU JSON | value |", "| --- | ---: |",
            f"| readings / file size | {m['readings']:,} / {m['file_mib']} MiB |",
            f"| peak Python heap: streamed (ijson) / whole document (json.loads, then the same frame) | "
            f"{m['streamed_peak_mib']} / {m['whole_document_peak_mib']} MiB |",
            f"| same readings both ways | {'yes' if m['same_rows'] else 'no'} |", ""]
    return out
