"""The market community's wire messages; every message id lives here.

Each travels as one signed IPv8 packet (``ez_send``: the sender's key and an Ed25519
signature over the packet), so the receiver knows which TrustChain key sent it.
Blocks travel in TrustChain's own encoding; negotiation steps and standing requests in
the CBOR formats of docs/market.md, as opaque bytes here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from ipv8.messaging.payload_dataclass import DataClassPayload, type_from_format

from enerdatx.overlay import compile_payloads

__all__ = [
    "RecordMessage",
    "ListingsRequestMessage",
    "FetchRequestMessage",
    "FetchResponseMessage",
    "NegotiationMessage",
    "RequestMessage",
    "MESSAGES",
]

# As in enerdatx.trustchain.payload: ``msg_id`` a class variable, wire types ints to the type checker.
if TYPE_CHECKING:
    uint32: TypeAlias = int
else:
    uint32 = type_from_format("I")


@dataclass
class RecordMessage(DataClassPayload):
    """A market record block (listing, withdrawal, complaint) of anyone's chain."""

    msg_id: ClassVar[int] = 1
    block: bytes


@dataclass
class ListingsRequestMessage(DataClassPayload):
    """Ask a peer for the market records of its own chain (sent once to every new neighbour)."""

    msg_id: ClassVar[int] = 2
    since: uint32  # the first sequence number of interest


@dataclass
class FetchRequestMessage(DataClassPayload):
    """Ask a seller for one chunk of the ciphertext of one of its listings."""

    msg_id: ClassVar[int] = 3
    identifier: uint32
    cid: str
    chunk: uint32


@dataclass
class FetchResponseMessage(DataClassPayload):
    """One chunk of a ciphertext; ``chunks`` 0 means the seller does not serve that CID."""

    msg_id: ClassVar[int] = 4
    identifier: uint32
    chunk: uint32
    chunks: uint32
    data: bytes


@dataclass
class NegotiationMessage(DataClassPayload):
    """One negotiation step (docs/market.md), CBOR-encoded."""

    msg_id: ClassVar[int] = 5
    step: bytes


@dataclass
class RequestMessage(DataClassPayload):
    """A standing request (a bid for data sets not yet named), CBOR with the buyer's signature."""

    msg_id: ClassVar[int] = 6
    request: bytes


MESSAGES = (
    RecordMessage,
    ListingsRequestMessage,
    FetchRequestMessage,
    FetchResponseMessage,
    NegotiationMessage,
    RequestMessage,
)


# pyipv8 3.2 recompiles a DataClassPayload's packing code on every instantiation.
compile_payloads(MESSAGES)
