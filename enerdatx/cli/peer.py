"""``enerdatx peer``: run one peer as a long-lived process, or print a peer's identity.

``enerdatx peer run --dir D --port P --peer HOST:PORT`` starts (or restarts) the peer kept
in D, walks to the given peers, and stops cleanly on SIGINT or SIGTERM. It prints one JSON
line when it is ready (its key and address) and one when it has stopped. Only one process at a
time runs a directory. ``peer backup`` snapshots a directory (also while its peer runs);
``peer recover`` rebuilds a lost ``chain.sqlite`` from peers that hold the chain.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import math
import signal
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipv8.messaging.interfaces.udp.endpoint import UDPv4Address

from enerdatx.datadir import backup_directory, load_identity, make_peer_directory
from enerdatx.errors import PeerUnreachableError, StorageError
from enerdatx.files import parse_directory, parse_file
from enerdatx.text import is_utf8
from enerdatx.udp import UDPEndpoint

__all__ = ["configure", "parse_address", "parse_contact", "parse_port", "check_bindable"]


def parse_address(text: str) -> UDPv4Address:
    """``HOST:PORT`` -> an IPv4 UDP address (a host name is resolved); ArgumentTypeError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not is_utf8(host) or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        ip = str(ipaddress.IPv4Address(host))
    except ValueError:
        try:  # IPv8 packs addresses as four bytes: names must become IPv4 addresses first
            ip = socket.gethostbyname(host)
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot resolve {host!r}: {exc}") from None
        except UnicodeError:  # the idna codec's refusal ("a..b", a label over 63 characters)
            raise argparse.ArgumentTypeError(f"cannot resolve {host!r}: not a host name") from None
    return UDPv4Address(ip, int(port))


def parse_host(text: str) -> str:
    """A ``--host`` to bind; an empty one would silently mean every interface (0.0.0.0), and
    one UTF-8 cannot encode (bytes of argv that are not UTF-8) failed in the socket's codec."""
    if not text or text != text.strip() or "\x00" in text or not is_utf8(text):
        raise argparse.ArgumentTypeError(f"expected a host or IP address to bind, got {text!r}")
    return text


def parse_device(text: str) -> str:
    """An OEHU ``--device`` id: sent in every poll's query string, so UTF-8 and not empty (one
    that is not UTF-8 killed the meter thread with a traceback while the peer ran on)."""
    if not text.strip() or not is_utf8(text):
        raise argparse.ArgumentTypeError(f"expected an OEHU device id, got {text!r}")
    return text


def parse_block_type(text: str) -> str:
    """A TrustChain block type for ``--accept``, by the encoding's own rule (docs/trustchain.md)."""
    from enerdatx.errors import EncodingError
    from enerdatx.trustchain.encoding import encode_type

    try:
        encode_type(text)
    except EncodingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_port(text: str) -> int:
    """A UDP port, 0 (any free port) to 65535; ArgumentTypeError otherwise."""
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def parse_seconds(text: str) -> float:
    """A positive, finite number of seconds up to an hour; ArgumentTypeError otherwise."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds <= 3600:  # NaN fails this too
        raise argparse.ArgumentTypeError(f"expected seconds in (0, 3600], got {text!r}")
    return seconds


def check_bindable(host: str, port: int) -> None:
    """Refuse, as one line, an address this machine cannot listen on.

    IPv8's endpoint would try the next 10,000 ports instead, or carry on without a socket.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, port))
    except (OSError, OverflowError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise PeerUnreachableError(f"cannot listen on {host}:{port}: {reason}") from None


def parse_meter_source(text: str) -> str:
    """A P1 source for ``--meter``: tcp://HOST:PORT, serial:PORT or an existing file; ArgumentTypeError otherwise."""
    from enerdatx.errors import MeterDataError
    from enerdatx.meter.dsmr import check_address_source

    try:
        if check_address_source(text):
            return text
    except MeterDataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not text.strip():  # ": is a directory", of the current one
        raise argparse.ArgumentTypeError(f"expected tcp://HOST:PORT, serial:PORT or a FILE, got {text!r}")
    if (path := Path(text)).is_dir() or not path.exists():
        # A serial device may be plugged in later (it is retried); a file name (or a named pipe) is checked now.
        what = "is a directory" if path.is_dir() else "no such file"
        raise argparse.ArgumentTypeError(f"{text}: {what} (a source is tcp://HOST:PORT, serial:PORT or a FILE)")
    return text


def parse_http_url(text: str) -> str:
    """An http(s) URL with a host (``--oehu``); ArgumentTypeError otherwise."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  # raises ValueError for a port out of range
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL, got {text!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http(s) URL such as http://127.0.0.1:8080, got {text!r}")
    return text


def parse_contact(text: str) -> tuple[bytes, UDPv4Address]:
    """``PUBLICKEYHEX@HOST:PORT`` -> (public key, address)."""
    key_hex, sep, address = text.partition("@")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if not sep or len(key) != 32:
        raise argparse.ArgumentTypeError(f"expected PUBLICKEYHEX@HOST:PORT (64 hex digits), got {text!r}")
    from enerdatx.errors import EncodingError
    from enerdatx.trustchain.keys import ipv8_public_key_bin

    try:  # 64 hex digits that are no key crashed the peer when it first sent to it
        ipv8_public_key_bin(key)
    except EncodingError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, in {text!r}") from None
    return key, parse_address(address)


def configure(peer: argparse.ArgumentParser, argv: Sequence[str] | None) -> None:
    """Build ``peer run``, ``peer id``, ``peer backup`` and ``peer recover``."""
    inner = peer.add_subparsers(dest="peer_command", metavar="COMMAND", required=True)

    run = inner.add_parser("run", help="run one peer until SIGINT/SIGTERM")
    run.add_argument("--dir", required=True, type=parse_directory, help="the peer's directory (created if new)")
    run.add_argument("--host", default="127.0.0.1", type=parse_host, help="address to bind (default 127.0.0.1; 0.0.0.0 for a LAN)")
    run.add_argument("--port", type=parse_port, default=0, help="UDP port (default: any free port)")
    run.add_argument("--peer", action="append", default=[], type=parse_address, metavar="HOST:PORT",
                     help="walk to this peer (repeatable)")
    run.add_argument("--contact", action="append", default=[], type=parse_contact, metavar="KEY@HOST:PORT",
                     help="a peer whose key is known (repeatable)")
    run.add_argument("--accept", action="append", default=[], metavar="TYPE", type=parse_block_type,
                     help="countersign every proposal of this block type (experiments, benchmarks)")
    run.add_argument("--no-fsync", action="store_true",
                     help="never wait for the disk (benchmarks; a power cut may then cost signed blocks)")
    run.add_argument("--catch-up-timeout", type=parse_seconds, default=None, metavar="SECONDS",
                     help="with --peer/--contact: seconds to wait for them at start, before signing anything, "
                          "for blocks of this chain its database lacks (default 5)")
    live = run.add_argument_group("live meter data and subscriptions")
    source = live.add_mutually_exclusive_group()
    source.add_argument("--meter", metavar="SOURCE", type=parse_meter_source,
                        help="read P1 telegrams continuously: tcp://HOST:PORT, serial:/dev/ttyUSB0 or a FILE")
    source.add_argument("--oehu", metavar="URL", type=parse_http_url, help="poll an OEHU API for readings (with --device)")
    live.add_argument("--device", type=parse_device, help="the OEHU device id to poll")
    live.add_argument("--offer", type=parse_file, action="append", default=[], metavar="FILE.json",
                      help="sell a subscription (descriptor, price, period_seconds, start, periods, terms); "
                           "an identical offer already on our chain is kept, not signed again")
    live.add_argument("--market", action="store_true",
                      help="run the market and subscriptions without a meter (a buyer)")
    live.add_argument("--report-readings", action="store_true",
                      help="print one JSON line per committed batch of readings")
    run.set_defaults(func=_run)

    show = inner.add_parser("id", help="print the peer's public key (creating its identity if new)")
    show.add_argument("--dir", required=True, type=parse_directory)
    show.set_defaults(func=_show_id)

    backup = inner.add_parser("backup", help="write a consistent snapshot of the key and chain (peer may run)")
    backup.add_argument("--dir", required=True, type=parse_directory)
    backup.add_argument("--out", required=True, type=parse_directory, help="a new or empty directory")
    backup.set_defaults(func=_backup)

    recover = inner.add_parser("recover", help="rebuild a lost chain.sqlite from peers that hold the chain")
    recover.add_argument("--dir", required=True, type=parse_directory, help="the peer's directory (its identity.key is needed)")
    recover.add_argument("--host", default="127.0.0.1", type=parse_host)
    recover.add_argument("--port", type=parse_port, default=0)
    recover.add_argument("--peer", action="append", default=[], type=parse_address, metavar="HOST:PORT",
                         help="a peer that holds blocks of this chain (repeatable)")
    recover.add_argument("--contact", action="append", default=[], type=parse_contact, metavar="KEY@HOST:PORT")
    recover.add_argument("--timeout", type=parse_seconds, default=10.0, help="seconds to wait for the peers to answer")
    recover.set_defaults(func=_recover)


def _show_id(args: argparse.Namespace) -> int:
    make_peer_directory(args.dir)
    print(load_identity(args.dir).public_key.hex())
    return 0


def _backup(args: argparse.Namespace) -> int:
    _emit("backup", **backup_directory(args.dir, args.out))
    return 0


async def _recover_async(args: argparse.Namespace) -> None:
    from enerdatx.datadir import open_directory
    from enerdatx.peer import Peer
    from enerdatx.recovery import recover_chain

    if not (args.dir / "identity.key").is_file():
        raise StorageError("no identity.key: recovery needs the key the chain was signed with", path=args.dir)
    if not args.peer and not args.contact:
        raise StorageError("give at least one --peer or --contact that holds the chain", path=args.dir)
    check_bindable(args.host, args.port)
    opened = open_directory(args.dir, recovering=True)
    peer = Peer(args.dir, UDPEndpoint(port=args.port, ip=args.host), walk=True, _opened=opened)
    try:
        await peer.start()
        peer.add_contacts(args.contact)
        peer.community.add_seeds(args.peer)
        wanted = len(args.peer) + len(args.contact)
        recovery = await recover_chain(peer, wanted_peers=wanted, timeout=args.timeout)
    finally:
        await peer.stop()
    _emit("recovered", **recovery.as_dict())


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _accept_all(_ledger: Any, _proposal: Any) -> None:
    return None


def _live_service(args: argparse.Namespace) -> Any:
    from enerdatx.market.subscription import SubscriptionService

    oehu = None
    if args.oehu:
        from enerdatx.meter.oehu import OEHUClient

        oehu = (OEHUClient(args.oehu), args.device)

    def report(event: str, **fields: Any) -> None:
        if event != "readings" or args.report_readings:
            _emit(event, **fields)

    return SubscriptionService(meter=args.meter, oehu=oehu, on_event=report)


def _offer_from_file(service: Any, path: Path) -> Any:
    """Sign the offer described in ``path`` unless an identical live one is on our chain already."""
    return _sign_offer(service, _read_offer(path))


# An offer is one signed transaction (at most 32,000 bytes encoded): its JSON is far smaller than this.
_MAX_OFFER_FILE = 1 << 20


def _read_offer(path: Path) -> dict[str, Any]:
    """The fields of the offer described in ``path``; MarketError if it is not an offer file."""
    from enerdatx.errors import MarketError, StorageError
    from enerdatx.files import read_small_file
    from enerdatx.market.subscription_formats import Terms, offer_transaction

    # A FIFO made the peer wait for ever before it started, and /dev/zero read until memory ran out.
    try:
        data = read_small_file(path, _MAX_OFFER_FILE, what="read the offer file")
        if len(data) > _MAX_OFFER_FILE:
            raise MarketError(f"{path}: not an offer file: it is larger than {_MAX_OFFER_FILE:,} bytes")
        text = data.decode("utf-8")
    except StorageError as exc:  # not a regular file: its message names the path already
        raise MarketError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise MarketError(f"{path}: cannot read the offer file: {getattr(exc, 'strerror', None) or exc}") from exc
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict) or not isinstance(spec.get("terms"), dict):
            raise TypeError('expected a JSON object with "descriptor", "price", "period_seconds", "start", '
                            '"periods" and a "terms" object')
        terms = Terms(**spec["terms"])
        fields = dict(descriptor=spec["descriptor"], price=spec["price"], period_ms=_period_ms(spec["period_seconds"]),
                      start=_start_ms(spec["start"]), periods=spec["periods"], terms=terms)
        # Checked whole before the peer is made: a price of -1 was refused only once the peer had
        # started, its directory and key made, in words that named no file.
        offer_transaction(**fields)
    except KeyError as exc:
        raise MarketError(f"{path}: not an offer file: no {exc} field") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # EncodingError is a ValueError
        raise MarketError(f"{path}: not an offer file: {exc}") from exc
    return fields


def _sign_offer(service: Any, fields: dict[str, Any]) -> Any:
    """Sign the offer of ``fields`` (as :func:`_read_offer` gives them) unless an identical live one is on our chain."""
    subs = service.subscriptions
    for offer in subs.live_offers():
        if offer.seller == subs.public_key and (offer.descriptor, offer.price, offer.period_ms, offer.start,
                                                offer.periods, offer.terms) == tuple(fields.values()):
            return offer
    return subs.offer(fields.pop("descriptor"), fields.pop("price"), **fields)


def _period_ms(seconds: Any) -> int:
    """An offer's period in ms: a finite positive number of seconds (true is no number here)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not 0 < seconds < 2**53 / 1000:
        raise ValueError(f"period_seconds must be a positive number of seconds, not {seconds!r}")
    return int(seconds * 1000)


def _start_ms(start: Any) -> int:
    """An offer's start in ms since the epoch, from an absolute ISO time.

    Relative words ("now", "today") are refused: the offer would differ at every restart, and
    the identical offer already on the chain would never be found again.
    """
    from enerdatx.errors import MeterDataError
    from enerdatx.meter.resample import utc_timestamp
    from enerdatx.meter.schema import LAST_DAY

    wanted = f"start must be an ISO time such as 2026-01-01T00:00:00Z, from 1970-01-01 to {LAST_DAY}, not {start!r}"
    if not isinstance(start, str) or start.strip().lower() in ("now", "today", "tomorrow", "yesterday"):
        raise ValueError(wanted)
    try:  # outside 1677..2262 pandas' own words were "Cannot convert Timestamp to nanoseconds"
        when = utc_timestamp(start)
    except MeterDataError:  # "" (NaT), or not a time
        raise ValueError(wanted) from None
    if when.value < 0:  # before the epoch: a negative start the offer refuses as "an integer in 0.."
        raise ValueError(wanted)
    return int(when.as_unit("ns").value // 1_000_000)


async def _serve(args: argparse.Namespace) -> None:
    from enerdatx.peer import Peer
    from enerdatx.recovery import CATCHING_UP, catch_up

    check_bindable(args.host, args.port)
    # Read before the peer is made: a bad offer file made the directory and a key first.
    wanted = [_read_offer(path) for path in args.offer]
    peer = Peer(args.dir, UDPEndpoint(port=args.port, ip=args.host), walk=True, durable=not args.no_fsync)
    for block_type in args.accept:
        peer.ledger.register_policy(block_type, _accept_all)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await peer.start()
        peer.add_contacts(args.contact)
        peer.community.add_seeds(args.peer)
        caught_up = None
        if args.peer or args.contact:
            # Nothing is signed, offers included, until the peers have said what of our chain they hold.
            with peer.ledger.signing_held(CATCHING_UP):
                caught_up = (await catch_up(peer, wanted_peers=len(args.peer) + len(args.contact),
                                            timeout=args.catch_up_timeout)).as_dict()
        offers = []
        if args.meter or args.oehu or args.offer or args.market:

            peer.add_market()
            live = _live_service(args)
            peer.add_service(live)
            offers = [_sign_offer(live, fields).offer_id for fields in wanted]
            live.publish_due()
        host, port = peer.address[:2]
        _emit("ready", public_key=peer.public_key.hex(), address=f"{host}:{port}",
              blocks=peer.store.latest_sequence_number(peer.public_key), offers=offers, caught_up=caught_up)
        await stop.wait()
    finally:
        await peer.stop()
    _emit("stopped", public_key=peer.public_key.hex())


# Seconds a peer started with --peer or --contact waits for them for blocks of its chain (--catch-up-timeout).
_CATCH_UP_TIMEOUT = 5.0


def _run(args: argparse.Namespace) -> int:
    if args.device and not args.oehu:
        # A P1 meter (--meter) is one meter: a device would be ignored, and the user would not know.
        raise SystemExit("enerdatx: error: --device names the OEHU device to poll: it goes with --oehu URL")
    if args.oehu and not args.device:  # before the peer starts: it made the directory and a key first
        raise SystemExit("enerdatx: error: --oehu needs --device ID")
    if args.catch_up_timeout is None:
        args.catch_up_timeout = _CATCH_UP_TIMEOUT
    elif not (args.peer or args.contact):  # there is no one to wait for: the option was ignored
        raise SystemExit("enerdatx: error: --catch-up-timeout is how long to wait for --peer or --contact "
                         "at start: it goes with one of them")
    if args.report_readings and not (args.meter or args.oehu):
        # Readings come only from a meter: the peer ran and printed none, and the user would not know why.
        raise SystemExit("enerdatx: error: --report-readings prints the readings of --meter or --oehu: "
                         "it goes with one of them")
    asyncio.run(_serve(args))
    sys.stdout.flush()
    return 0


def _recover(args: argparse.Namespace) -> int:
    asyncio.run(_recover_async(args))
    return 0
