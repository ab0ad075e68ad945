"""The miner-facing layer: signing, the HTTP client, live per-miner stats (in-process and shared
across gateway replicas), the attempt loop and the miners' receipts.

Used by the gateway for organic requests and by the scoring process for synthetic ones, so both
reach miners through the same code.
"""

from core.miners.attempts import Attempt, DispatchState, MinerEndpoint, StreamFailure
from core.miners.client import (
    MinerClient,
    MinerConnectError,
    MinerProtocolError,
    MinerResponse,
    MinerStream,
    MinerTimeout,
    TransportError,
)
from core.miners.dispatch import Delivered, Dispatcher
from core.miners.rawhttp import RawMinerClient
from core.miners.reader import StreamReader, TextRules
from core.miners.receipts import Receipt, ReceiptStatus, verify_record
from core.miners.shared_stats import SharedStats
from core.miners.signing import RequestSigner
from core.miners.stats import FAILURES, InProcessStats, MinerKey, MinerSnapshot, MinerStats, Outcome
from core.miners.streams import OpenStream

__all__ = [
    "FAILURES",
    "Attempt",
    "Delivered",
    "DispatchState",
    "Dispatcher",
    "InProcessStats",
    "MinerClient",
    "MinerConnectError",
    "MinerEndpoint",
    "MinerKey",
    "MinerProtocolError",
    "MinerResponse",
    "MinerSnapshot",
    "MinerStats",
    "MinerStream",
    "MinerTimeout",
    "OpenStream",
    "Outcome",
    "RawMinerClient",
    "Receipt",
    "ReceiptStatus",
    "RequestSigner",
    "SharedStats",
    "StreamFailure",
    "StreamReader",
    "TextRules",
    "TransportError",
    "verify_record",
]
