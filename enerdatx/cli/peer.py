"""``enerdatx peer``: run one peer as a long-lived process, or print a peer's identity.

``enerdatx peer run --dir D --port P --peer HOST:PORT`` starts (or restarts) the peer kept
in D, walks to the given peers, and stops cleanly on SIGINT or SIGTERM. It prints one JSON
line when it is ready (its key and address) and one when it has stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from ipv8.messaging.interfaces.udp.endpoint import UDPEndpoint, UDPv4Address

from enerdatx.crypto import Identity

__all__ = ["register", "parse_address", "parse_contact"]


def parse_address(text: str) -> UDPv4Address:
    """``HOST:PORT`` -> an IPv4 UDP address (a host name is resolved); ArgumentTypeError otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    try:
        ip = str(ipaddress.IPv4Address(host))
    except ValueError:
        try:  # IPv8 packs addresses as four bytes: names must become IPv4 addresses first
            ip = socket.gethostbyname(host)
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot resolve {host!r}: {exc}") from None
    return UDPv4Address(ip, int(port))


def parse_contact(text: str) -> tuple[bytes, UDPv4Address]:
    """``PUBLICKEYHEX@HOST:PORT`` -> (public key, address)."""
    key_hex, sep, address = text.partition("@")
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        key = b""
    if not sep or len(key) != 32:
        raise argparse.ArgumentTypeError(f"expected PUBLICKEYHEX@HOST:PORT (64 hex digits), got {text!r}")
    return key, parse_address(address)


def register(subparsers: Any) -> None:
    """Add ``peer run`` and ``peer id``."""
    peer = subparsers.add_parser("peer", help="run a peer on UDP, or show its identity")
    inner = peer.add_subparsers(dest="peer_command", metavar="COMMAND", required=True)

    run = inner.add_parser("run", help="run one peer until SIGINT/SIGTERM")
    run.add_argument("--dir", required=True, type=Path, help="the peer's directory (created if new)")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for a LAN)")
    run.add_argument("--port", type=int, default=0, help="UDP port (default: any free port)")
    run.add_argument("--peer", action="append", default=[], type=parse_address, metavar="HOST:PORT",
                     help="walk to this peer (repeatable)")
    run.add_argument("--contact", action="append", default=[], type=parse_contact, metavar="KEY@HOST:PORT",
                     help="a peer whose key is known (repeatable)")
    run.add_argument("--accept", action="append", default=[], metavar="TYPE",
                     help="countersign every proposal of this block type (experiments, benchmarks)")
    run.add_argument("--no-fsync", action="store_true",
                     help="never wait for the disk (benchmarks; a power cut may then cost signed blocks)")
    live = run.add_argument_group("live meter data and subscriptions")
    source = live.add_mutually_exclusive_group()
    source.add_argument("--meter", metavar="SOURCE",
                        help="read P1 telegrams continuously: tcp://HOST:PORT, serial:/dev/ttyUSB0 or a FILE")
    source.add_argument("--oehu", metavar="URL", help="poll an OEHU API for readings (with --device)")
    live.add_argument("--device", help="the OEHU device id to poll")
    live.add_argument("--offer", type=Path, action="append", default=[], metavar="FILE.json",
                      help="sell a subscription (descriptor, price, period_seconds, start, periods, terms); "
                           "an identical offer already on our chain is kept, not signed again")
    live.add_argument("--market", action="store_true",
                      help="run the market and subscriptions without a meter (a buyer)")
    live.add_argument("--report-readings", action="store_true",
                      help="print one JSON line per committed batch of readings")
    run.set_defaults(func=_run)

    show = inner.add_parser("id", help="print the peer's public key (creating its identity if new)")
    show.add_argument("--dir", required=True, type=Path)
    show.set_defaults(func=_show_id)


def _show_id(args: argparse.Namespace) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    print(Identity.load_or_create(args.dir / "identity.key").public_key.hex())
    return 0


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _accept_all(_ledger: Any, _proposal: Any) -> None:
    return None


def _live_service(args: argparse.Namespace) -> Any:
    from enerdatx.market.subscription import SubscriptionService

    oehu = None
    if args.oehu:
        from enerdatx.meter.oehu import OEHUClient

        if not args.device:
            raise SystemExit("enerdatx: error: --oehu needs --device ID")
        oehu = (OEHUClient(args.oehu), args.device)

    def report(event: str, **fields: Any) -> None:
        if event != "readings" or args.report_readings:
            _emit(event, **fields)

    return SubscriptionService(meter=args.meter, oehu=oehu, on_event=report)


def _offer_from_file(service: Any, path: Path) -> Any:
    """Sign the offer described in ``path`` unless an identical live one is on our chain already."""
    import pandas as pd

    from enerdatx.errors import MarketError
    from enerdatx.market.subscription_formats import Terms

    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
        terms = Terms(**spec["terms"])
        fields = dict(descriptor=spec["descriptor"], price=spec["price"], period_ms=int(spec["period_seconds"] * 1000),
                      start=pd.Timestamp(spec["start"]).value // 1_000_000, periods=spec["periods"], terms=terms)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise MarketError(f"{path}: not an offer file: {exc}") from exc
    subs = service.subscriptions
    for offer in subs.live_offers():
        if offer.seller == subs.public_key and (offer.descriptor, offer.price, offer.period_ms, offer.start,
                                                offer.periods, offer.terms) == tuple(fields.values()):
            return offer
    return subs.offer(fields.pop("descriptor"), fields.pop("price"), **fields)


async def _serve(args: argparse.Namespace) -> None:
    from enerdatx.peer import Peer

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
        offers = []
        if args.meter or args.oehu or args.offer or args.market:
            from enerdatx.market.service import MarketService

            peer.add_service(MarketService())
            live = _live_service(args)
            peer.add_service(live)
            offers = [_offer_from_file(live, path).offer_id for path in args.offer]
            live.publish_due()
        host, port = peer.address[:2]
        _emit("ready", public_key=peer.public_key.hex(), address=f"{host}:{port}",
              blocks=peer.store.latest_sequence_number(peer.public_key), offers=offers)
        await stop.wait()
    finally:
        await peer.stop()
    _emit("stopped", public_key=peer.public_key.hex())


def _run(args: argparse.Namespace) -> int:
    asyncio.run(_serve(args))
    sys.stdout.flush()
    return 0
