"""The TrustChain community's wire messages; every message id lives here.

Each message is one IPv8 packet: the 22-byte community prefix and a message id, then,
if signed, the sender's 74-byte curve25519 public key; the payload below; if signed, a
64-byte Ed25519 signature. Messages that only carry blocks or fraud proofs (signed by
their authors) are not signed again. Blocks and proofs travel in the ledger's own
versioned encodings (docs/trustchain.md), as opaque bytes here.
docs/network.md lists the messages with their sizes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from ipv8.messaging.payload_dataclass import DataClassPayload, type_from_format

from enerdatx.overlay import compile_payloads

__all__ = [
    "ProposalMessage",
    "AgreementMessage",
    "RejectionMessage",
    "CrawlRequestMessage",
    "CrawlResponseMessage",
    "BlockBroadcastMessage",
    "FraudProofMessage",
    "MESSAGES",
    "UNSIGNED",
    "SIGNED_OVERHEAD",
    "UNSIGNED_OVERHEAD",
    "pack_blocks",
    "MAX_LISTED_BLOCKS",
]

# Bytes around a payload: 22-byte community prefix and 1-byte message id; a signed message
# adds the sender's key (2-byte length + 74-byte curve25519 key) and a 64-byte Ed25519 signature.
UNSIGNED_OVERHEAD = 22 + 1
SIGNED_OVERHEAD = UNSIGNED_OVERHEAD + 2 + 74 + 64

# Each message is a DataClassPayload whose ``msg_id`` is a class variable: the same packets as
# pyipv8's ``DataClassPayload[n]`` sugar, in a form a type checker can read. Wire types are
# pyipv8 format directives at run time; to the type checker, the values they carry.
if TYPE_CHECKING:
    uint8: TypeAlias = int
    uint32: TypeAlias = int
    uint64: TypeAlias = int
    key32: TypeAlias = bytes
    block_list: TypeAlias = list[bytes]
else:
    uint8 = type_from_format("B")
    uint32 = type_from_format("I")
    uint64 = type_from_format("Q")
    key32 = type_from_format("32s")
    block_list = type_from_format("varlenH-list")


@dataclass
class ProposalMessage(DataClassPayload):
    """A proposal half-block addressed to the receiver, asking for its agreement.

    ``history``: blocks of the proposer's chain just below the proposal, oldest first, that
    the receiver may lack; it would otherwise crawl them before countersigning.
    """

    msg_id: ClassVar[int] = 1
    block: bytes
    history: block_list


@dataclass
class AgreementMessage(DataClassPayload):
    """The receiver's agreement half-block for a proposal it was sent."""

    msg_id: ClassVar[int] = 2
    block: bytes


@dataclass
class RejectionMessage(DataClassPayload):
    """The counterparty refuses to countersign the proposal with this sequence number."""

    msg_id: ClassVar[int] = 3
    sequence_number: uint64
    reason: str


@dataclass
class CrawlRequestMessage(DataClassPayload):
    """Ask for the blocks of ``public_key``'s chain in [start, end]; end 0 means up to the head."""

    msg_id: ClassVar[int] = 4
    identifier: uint32
    public_key: key32
    start: uint64
    end: uint64


@dataclass
class CrawlResponseMessage(DataClassPayload):
    """Blocks of a crawl answer (as many as fit a packet); ``total``: blocks in the whole answer."""

    msg_id: ClassVar[int] = 5
    identifier: uint32
    total: uint32
    blocks: block_list


@dataclass
class BlockBroadcastMessage(DataClassPayload):
    """A new half-block spreading by gossip; the receiver forwards it while ``ttl`` > 1."""

    msg_id: ClassVar[int] = 6
    ttl: uint8
    block: bytes


@dataclass
class FraudProofMessage(DataClassPayload):
    """A fraud proof (two signed blocks at one sequence number), spreading by gossip."""

    msg_id: ClassVar[int] = 7
    proof: bytes


MESSAGES = (
    ProposalMessage,
    AgreementMessage,
    RejectionMessage,
    CrawlRequestMessage,
    CrawlResponseMessage,
    BlockBroadcastMessage,
    FraudProofMessage,
)

# Messages that carry only blocks or proofs signed by their authors go without an IPv8
# signature: verifying one costs as much as the ledger's own check, and the sender adds nothing.
UNSIGNED = (AgreementMessage, CrawlResponseMessage, BlockBroadcastMessage, FraudProofMessage)


# A ``block_list`` counts its items in one byte.
MAX_LISTED_BLOCKS = 255


def pack_blocks(blocks: list[bytes], budget: int) -> list[list[bytes]]:
    """Encoded blocks in as few ``block_list`` payloads of at most ``budget`` bytes (and
    MAX_LISTED_BLOCKS blocks) as fit (at least one)."""
    batches: list[list[bytes]] = [[]]
    for data in blocks:
        batch = batches[-1]
        too_big = sum(map(len, batch)) + 2 * len(batch) + len(data) + 2 > budget  # 2: a length prefix
        if batch and (too_big or len(batch) == MAX_LISTED_BLOCKS):
            batches.append(batch := [])
        batch.append(data)
    return batches


# pyipv8 3.2 compiles a DataClassPayload's (un)packing code again on every instantiation,
# which took most of the CPU time of a 200-peer simulation; compile each message once.
compile_payloads(MESSAGES)
