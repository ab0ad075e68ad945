from __future__ import annotations

from pathlib import Path

import pytest

from core.chain import ChainUnavailable, LocalChain
from protocol.chainfile import Neuron, format_chain_file


def make_chain(tmp_path: Path, **kwargs: float) -> LocalChain:
    path = tmp_path / "chain.txt"
    path.write_text(
        format_chain_file(
            [
                Neuron(uid=0, hotkey="5Val", stake=1000, validator_permit=True),
                Neuron(uid=1, hotkey="5Min", axon="127.0.0.1:9000"),
            ]
        )
    )
    return LocalChain(
        path,
        hotkey="5Val",
        block_time_s=kwargs.get("block_time_s", 0.01),
        weights_rate_limit=int(kwargs.get("rate", 1000)),
    )


async def test_metagraph_rereads_the_file(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    assert len((await chain.metagraph()).neurons) == 2
    with chain.path.open("a") as handle:
        handle.write("5New 127.0.0.1:9001 stake=0\n")
    metagraph = await chain.metagraph()
    assert metagraph.by_hotkey("5New") is not None
    assert metagraph.by_hotkey("5New").uid == 2  # type: ignore[union-attr]


async def test_weights_recorded_and_rate_limited(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, rate=1000)
    first = await chain.set_weights(uids=[1], weights=[65535], version_key=1)
    assert first.success
    second = await chain.set_weights(uids=[1], weights=[65535], version_key=1)
    assert not second.success and "too soon" in second.message
    assert [r.weights for r in chain.weight_history()] == [[65535]]
    bad = await chain.set_weights(uids=[7], weights=[1], version_key=1)
    assert not bad.success


async def test_non_validator_cannot_set(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    chain.hotkey = "5Min"
    result = await chain.set_weights(uids=[1], weights=[1], version_key=1)
    assert not result.success and "permit" in result.message


async def test_down_file_makes_calls_fail(tmp_path: Path) -> None:
    chain = make_chain(tmp_path)
    chain.down_path.touch()
    with pytest.raises(ChainUnavailable):
        await chain.metagraph()
    chain.down_path.unlink()
    assert (await chain.current_block()) >= 0
