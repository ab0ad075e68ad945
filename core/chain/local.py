"""A local network for `sn19 dev` and the tests, behind the same interface as the real chain.

- Neurons come from a text file (``protocol.chainfile``), re-read on every metagraph call, so an
  outside miner joins by adding a line.
- Blocks advance with wall-clock time from the network's genesis (kept in ``<file>.state``).
- ``set_weights`` enforces a rate limit in blocks per validator hotkey and records every weight
  vector it accepts in ``<file>.weights.jsonl``.
- Creating ``<file>.down`` makes every call fail with ``ChainUnavailable`` (to test the
  validator's behaviour when the chain is unreachable).
"""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from core.chain.base import ChainUnavailable, Metagraph, WeightsResult
from protocol.chainfile import ChainFileError, parse_chain_file


class WeightRecord(msgspec.Struct, frozen=True):
    block: int
    time: float
    hotkey: str
    uids: list[int]
    weights: list[int]
    version_key: int


class _State(msgspec.Struct):
    genesis: float


class LocalChain:
    def __init__(
        self,
        path: Path,
        *,
        hotkey: str = "",
        netuid: int = 19,
        block_time_s: float = 12.0,
        weights_rate_limit: int = 100,
    ) -> None:
        self.path = path
        self.hotkey = hotkey
        self.netuid = netuid
        self.block_time_s = block_time_s
        self.weights_rate_limit_blocks = weights_rate_limit
        self.state_path = path.with_name(path.name + ".state")
        self.weights_path = path.with_name(path.name + ".weights.jsonl")
        self.down_path = path.with_name(path.name + ".down")

    def _genesis(self) -> float:
        try:
            return msgspec.json.decode(self.state_path.read_bytes(), type=_State).genesis
        except FileNotFoundError:
            state = _State(genesis=time.time())
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self.state_path.write_bytes(msgspec.json.encode(state))
            return state.genesis

    def _check_up(self) -> None:
        if self.down_path.exists():
            raise ChainUnavailable(f"local chain is down ({self.down_path} exists)")

    async def current_block(self) -> int:
        self._check_up()
        return int((time.time() - self._genesis()) / self.block_time_s)

    async def metagraph(self) -> Metagraph:
        self._check_up()
        try:
            neurons = parse_chain_file(self.path.read_text("utf-8"))
        except FileNotFoundError:
            raise ChainUnavailable(f"local chain file {self.path} does not exist") from None
        except ChainFileError as exc:
            raise ChainUnavailable(f"{self.path}: {exc}") from exc
        return Metagraph(
            netuid=self.netuid, block=await self.current_block(), neurons=tuple(neurons)
        )

    async def weights_rate_limit(self) -> int:
        self._check_up()
        return self.weights_rate_limit_blocks

    async def last_weights_block(self) -> int | None:
        self._check_up()
        mine = [record for record in self.weight_history() if record.hotkey == self.hotkey]
        return mine[-1].block if mine else None

    async def weights_version(self) -> int:
        self._check_up()
        return 0

    def weight_history(self) -> list[WeightRecord]:
        try:
            lines = self.weights_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        return [msgspec.json.decode(line, type=WeightRecord) for line in lines if line.strip()]

    async def set_weights(
        self, *, uids: list[int], weights: list[int], version_key: int
    ) -> WeightsResult:
        metagraph = await self.metagraph()
        block = metagraph.block
        me = metagraph.by_hotkey(self.hotkey)
        if me is None:
            return WeightsResult(False, f"hotkey {self.hotkey} is not registered", block)
        if not me.validator_permit:
            return WeightsResult(False, "hotkey has no validator permit", block)
        if len(uids) != len(weights):
            return WeightsResult(False, "uids and weights differ in length", block)
        known = {neuron.uid for neuron in metagraph.neurons}
        if any(uid not in known for uid in uids):
            return WeightsResult(False, "weights name an unknown uid", block)
        if any(not 0 <= weight <= 65535 for weight in weights):
            return WeightsResult(False, "weights must be u16", block)
        last = [record for record in self.weight_history() if record.hotkey == self.hotkey]
        if last and block - last[-1].block < self.weights_rate_limit_blocks:
            wait = self.weights_rate_limit_blocks - (block - last[-1].block)
            return WeightsResult(False, f"too soon to set weights: {wait} more blocks", block)
        record = WeightRecord(
            block=block,
            time=time.time(),
            hotkey=self.hotkey,
            uids=list(uids),
            weights=list(weights),
            version_key=version_key,
        )
        with self.weights_path.open("ab") as handle:
            handle.write(msgspec.json.encode(record) + b"\n")
        return WeightsResult(True, "weights recorded", block)

    async def close(self) -> None:
        return None
