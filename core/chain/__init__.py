"""The chain interface and its implementations (local file network; the bittensor SDK)."""

from core.chain.base import Chain, ChainUnavailable, Metagraph, WeightsResult
from core.chain.local import LocalChain, WeightRecord

__all__ = ["Chain", "ChainUnavailable", "LocalChain", "Metagraph", "WeightRecord", "WeightsResult"]
