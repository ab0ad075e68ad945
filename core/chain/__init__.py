"""The chain interface and its implementations (local file network; the bittensor SDK)."""

from core.chain.base import Chain, ChainUnavailable, Metagraph, WeightsResult
from core.chain.local import LocalChain, WeightRecord
from core.settings import Settings
from protocol.config import ConfigError

__all__ = [
    "Chain",
    "ChainUnavailable",
    "LocalChain",
    "Metagraph",
    "WeightRecord",
    "WeightsResult",
    "chain_from_settings",
]


def chain_from_settings(settings: Settings, *, hotkey: str) -> Chain:
    """The chain the settings name: ``local`` (the file network of `sn19 dev`), or ``finney``,
    ``test`` or a ``ws(s)://`` endpoint through the bittensor SDK, signing with the wallet of
    ``settings.wallet``. Nothing connects here."""
    chain = settings.chain
    if chain.network == "local":
        return LocalChain(
            settings.chain_file,
            hotkey=hotkey,
            netuid=chain.netuid,
            block_time_s=chain.local_block_time_s,
            weights_rate_limit=chain.local_weights_rate_limit,
        )
    import bittensor as bt

    from core.chain.subtensor import SubtensorChain

    wallet = bt.Wallet(
        name=settings.wallet.name, hotkey=settings.wallet.hotkey, path=settings.wallet_path
    )
    try:
        return SubtensorChain(
            network=chain.network,
            netuid=chain.netuid,
            hotkey=hotkey,
            wallet=wallet,
            timeout_s=chain.timeout_s,
            set_weights_retries=chain.set_weights_retries,
        )
    except ValueError as exc:
        raise ConfigError(f"chain.network: {exc}") from exc
