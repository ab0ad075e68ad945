"""The real chain through the ``bittensor`` 11.x SDK (finney, test, or any ws(s):// endpoint).

Thin on purpose: every call is one SDK call, bounded by ``timeout_s``, with its errors mapped:

- the chain cannot be reached (connection refused or dropped, RPC errors, timeouts) →
  ``ChainUnavailable``: callers retry with backoff;
- the chain refuses a weight setting (rate limit, not registered, no permit, bad version key) →
  ``WeightsResult(success=False, message=...)``: nothing to retry until the next cadence.

Reads. ``metagraph()`` is the SDK's typed metagraph (one runtime-API call, commitments skipped),
mapped to our ``Neuron``:

- ``stake`` is the neuron's **total stake weight on the subnet** (``MetagraphNeuron.total_stake``:
  alpha stake plus root TAO stake × the chain's TAO weight, in the subnet's alpha units). It is
  the number the chain itself ranks validator permits and runs consensus on, so it is what a
  "stake share" must mean on a dynamic-TAO subnet. Miners gate validators on the same number.
- ``axon`` is ``ip:port``, or None when the neuron serves nothing (ip 0.0.0.0).
- ``coldkey``, ``validator_permit`` as on chain; ``tls_fingerprint`` is not read (validators do
  not pin certificates yet).

Writes. ``set_weights`` submits the SDK's ``SetWeights`` intent signed by the wallet's hotkey:
the SDK conforms the vector to the subnet's hyperparameters (max-weight clip, u16, minimum
count), preflights registration and the rate limit, and uses the timelocked commit-reveal path
when the subnet has commit-reveal on. The intent is built by ``weights_intent`` (a pure function,
tested offline), so what is sent can be inspected without a chain.

Nothing connects at construction; the first call opens the websocket (``bt.Client.connect``),
and a failed or dropped connection is re-opened on the next call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import bittensor as bt
from bittensor.settings import resolve_endpoint

from core.chain.base import ChainUnavailable, Metagraph, WeightsResult
from protocol.chainfile import Neuron

log = logging.getLogger(__name__)

T = TypeVar("T")
_STORAGE: Any = bt.storage.SubtensorModule
ClientFactory = Callable[[], Any]

# Errors meaning "the chain could not answer" (the SDK's transport errors, sockets, timeouts).
_UNREACHABLE: tuple[type[BaseException], ...] = (
    bt.RpcConnectionError,
    bt.ConnectionNotReady,
    OSError,
    TimeoutError,
    ConnectionError,
)


def weights_intent(*, netuid: int, uids: list[int], weights: list[int], version_key: int) -> Any:
    """The SDK intent that sets ``weights`` (u16 values aligned with ``uids``) on ``netuid``.

    Zero entries are dropped here (the SDK would drop them anyway); the values stay relative:
    the SDK re-normalises and re-quantises against the subnet's ``max_weight_limit``.
    """
    if len(uids) != len(weights):
        raise ValueError("uids and weights differ in length")
    pairs = [(int(uid), float(weight)) for uid, weight in zip(uids, weights, strict=True)]
    kept = [(uid, weight) for uid, weight in pairs if weight > 0]
    if not kept:
        raise ValueError("every weight is zero: nothing to set")
    return bt.SetWeights(
        netuid=netuid,
        uids=[uid for uid, _ in kept],
        weights=[weight for _, weight in kept],
        version_key=version_key,
    )


def neuron_from_sdk(neuron: Any) -> Neuron:
    """Our ``Neuron`` from a ``bt.MetagraphNeuron`` (see the module docstring for ``stake``)."""
    stake = neuron.total_stake
    amount = float(stake.rao) / 1e9 if stake is not None else 0.0
    axon = neuron.axon or None
    if axon is not None and (axon.startswith(("0.0.0.0:", "[::]:")) or axon.endswith(":0")):
        axon = None
    return Neuron(
        uid=int(neuron.uid),
        hotkey=str(neuron.hotkey),
        coldkey=str(neuron.coldkey or ""),
        stake=amount,
        axon=axon,
        validator_permit=bool(neuron.validator_permit),
    )


def metagraph_from_sdk(graph: Any) -> Metagraph:
    return Metagraph(
        netuid=int(graph.netuid),
        block=int(graph.block),
        neurons=tuple(neuron_from_sdk(neuron) for neuron in graph.neurons),
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class SubtensorChain:
    """``core.chain.Chain`` over the bittensor SDK."""

    def __init__(
        self,
        *,
        network: str,
        netuid: int,
        hotkey: str,
        wallet: Any = None,
        timeout_s: float = 60.0,
        set_weights_retries: int = 2,
        client_factory: ClientFactory | None = None,
    ) -> None:
        # Validates the network name or URL now, without connecting.
        self.network, self.endpoint = resolve_endpoint(network)
        self.netuid = netuid
        self.hotkey = hotkey
        self.wallet = wallet
        self.timeout_s = timeout_s
        self.set_weights_retries = set_weights_retries
        self._factory: ClientFactory = client_factory or (lambda: bt.Client(network))
        self._client: Any = None
        self._connected = False
        self._lock = asyncio.Lock()

    async def _connected_client(self) -> Any:
        async with self._lock:
            if self._client is None:
                self._client = self._factory()
            if not self._connected:
                await self._client.connect()
                self._connected = True
            return self._client

    async def _drop(self) -> None:
        client, self._client, self._connected = self._client, None, False
        if client is not None:
            try:
                await asyncio.wait_for(client.close(), timeout=5)
            except (*_UNREACHABLE, bt.BittensorError) as exc:
                log.debug("closing the chain client failed: %s", exc)

    async def _call(self, what: str, call: Callable[[Any], Awaitable[T]]) -> T:
        """Run one SDK call; map "cannot reach the chain" to ``ChainUnavailable``."""
        try:
            async with asyncio.timeout(self.timeout_s):
                client = await self._connected_client()
                return await call(client)
        except ChainUnavailable:
            raise
        except (*_UNREACHABLE, bt.ChainError, bt.BittensorError) as exc:
            await self._drop()
            raise ChainUnavailable(f"{self.network}: {what} failed: {_describe(exc)}") from exc

    async def current_block(self) -> int:
        async def read(client: Any) -> int:
            return int(await client.block())

        return await self._call("reading the current block", read)

    async def metagraph(self) -> Metagraph:
        async def read(client: Any) -> Any:
            return await client.subnets.metagraph(self.netuid, commitments=False)

        graph = await self._call(f"reading the metagraph of netuid {self.netuid}", read)
        if graph is None:
            raise ChainUnavailable(f"{self.network}: netuid {self.netuid} does not exist")
        return metagraph_from_sdk(graph)

    async def weights_rate_limit(self) -> int:
        async def read(client: Any) -> int:
            return int(await client.hyperparameters.weights_rate_limit(self.netuid))

        return await self._call("reading weights_rate_limit", read)

    async def weights_version(self) -> int:
        async def read(client: Any) -> int:
            value = await client.query(_STORAGE.WeightsVersionKey, [self.netuid])
            return int(value or 0)

        return await self._call("reading the weights version key", read)

    async def last_weights_block(self) -> int | None:
        async def read(client: Any) -> int | None:
            uid = await client.query(_STORAGE.Uids, [self.netuid, self.hotkey])
            if uid is None:
                return None
            # LastUpdate is keyed by the mechanism's storage index: the netuid for mechanism 0.
            updates = await client.query(_STORAGE.LastUpdate, [self.netuid])
            if not isinstance(updates, list | tuple) or int(uid) >= len(updates):
                return None
            block = int(updates[int(uid)] or 0)
            return block or None

        return await self._call("reading this validator's last weights block", read)

    async def set_weights(
        self, *, uids: list[int], weights: list[int], version_key: int
    ) -> WeightsResult:
        try:
            intent = weights_intent(
                netuid=self.netuid, uids=uids, weights=weights, version_key=version_key
            )
        except (ValueError, bt.BittensorError) as exc:
            return WeightsResult(False, f"weights refused before sending: {exc}", -1)
        if self.wallet is None:
            return WeightsResult(False, "no wallet configured to sign weights", -1)

        async def submit(client: Any) -> Any:
            try:
                return await client.execute(
                    intent,
                    self.wallet,
                    retries=self.set_weights_retries,
                    wait_for_inclusion=True,
                    wait_for_finalization=False,
                )
            except (bt.RpcConnectionError, bt.ConnectionNotReady):
                raise
            except bt.BittensorError as exc:  # refused by the chain or the SDK's preflight
                return exc

        outcome = await self._call("setting weights", submit)
        block = await self._block_or_unknown()
        if isinstance(outcome, bt.BittensorError):
            code = getattr(outcome, "code", None)
            label = getattr(code, "value", None) or "refused"
            return WeightsResult(False, f"{label}: {outcome}", block)
        if not outcome.success:
            return WeightsResult(False, outcome.message or "weights extrinsic failed", block)
        extrinsic = outcome.extrinsic_id or outcome.block_hash or ""
        return WeightsResult(True, f"weights included {extrinsic}".strip(), block)

    async def _block_or_unknown(self) -> int:
        try:
            return await self.current_block()
        except ChainUnavailable:
            return -1

    async def close(self) -> None:
        await self._drop()
