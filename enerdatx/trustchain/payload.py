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
]

# Bytes around a payload: 22-byte community prefix and 1-byte message id; a signed message
# adds the sender's key (2-byte length + 74-byte curve25519 key) and a 64-byte Ed25519 signature.
UNSIGNED_OVERHEAD = 22 + 1
SIGNED_OVERHEAD = UNSIGNED_OVERHEAD + 2 + 74 + 64

uint8 = type_from_format("B")
uint32 = type_from_format("I")
uint64 = type_from_format("Q")
key32 = type_from_format("32s")
block_list = type_from_format("varlenH-list")


@dataclass
class ProposalMessage(DataClassPayload[1]):
    """A proposal half-block addressed to the receiver, asking for its agreement."""

    block: bytes


@dataclass
class AgreementMessage(DataClassPayload[2]):
    """The receiver's agreement half-block for a proposal it was sent."""

    block: bytes


@dataclass
class RejectionMessage(DataClassPayload[3]):
    """The counterparty refuses to countersign the proposal with this sequence number."""

    sequence_number: uint64
    reason: str


@dataclass
class CrawlRequestMessage(DataClassPayload[4]):
    """Ask for the blocks of ``public_key``'s chain in [start, end]; end 0 means up to the head."""

    identifier: uint32
    public_key: key32
    start: uint64
    end: uint64


@dataclass
class CrawlResponseMessage(DataClassPayload[5]):
    """Blocks of a crawl answer (as many as fit a packet); ``total``: blocks in the whole answer."""

    identifier: uint32
    total: uint32
    blocks: block_list


@dataclass
class BlockBroadcastMessage(DataClassPayload[6]):
    """A new half-block spreading by gossip; the receiver forwards it while ``ttl`` > 1."""

    ttl: uint8
    block: bytes


@dataclass
class FraudProofMessage(DataClassPayload[7]):
    """A fraud proof (two signed blocks at one sequence number), spreading by gossip."""

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


# pyipv8 3.2 compiles a DataClassPayload's (un)packing code again on every instantiation,
# which took most of the CPU time of a 200-peer simulation; compile each message once.
compile_payloads(MESSAGES)
