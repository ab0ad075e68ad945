"""Reading a miner's text stream into a ``TextOutput`` with the gateway relays' strict rules.

What the synthetic sender uses to read a whole miner stream (the gateway's relays apply the same
rules while they also render client events): choice indexes within ``n``, token ids aligned
with logprobs, every generated token with a logprob, no output after a choice finished, no more
than ``max_tokens`` tokens per choice, and every choice finished when the stream ends. A
violation raises ``StreamFailure`` (``BAD_RESPONSE``): the miner broke the protocol.
"""

from __future__ import annotations

import msgspec

from core.miners.attempts import StreamFailure
from core.miners.stats import Outcome
from protocol.miner import MinerChatChunk, MinerCompletionChunk
from protocol.records import GeneratedChoice, TextOutput

CHAT_CHUNK = msgspec.json.Decoder(MinerChatChunk)
COMPLETION_CHUNK = msgspec.json.Decoder(MinerCompletionChunk)


def chat_first_token(chunk: MinerChatChunk) -> bool:
    return any(
        choice.token_ids or choice.finish_reason is not None or choice.delta.content
        for choice in chunk.choices
    )


def completion_first_token(chunk: MinerCompletionChunk) -> bool:
    return any(
        choice.token_ids or choice.finish_reason is not None or choice.text
        for choice in chunk.choices
    )


def _broken(message: str) -> StreamFailure:
    return StreamFailure(Outcome.BAD_RESPONSE, message)


class TextCollector:
    """Accumulates chat or completion chunks of one miner stream (``n`` choices)."""

    def __init__(self, *, n: int, max_tokens: int) -> None:
        self.n = n
        self.max_tokens = max_tokens
        self.output = TextOutput(choices=[GeneratedChoice(index=i) for i in range(n)])
        self.completion_tokens = 0
        self._texts: list[list[str]] = [[] for _ in range(n)]
        self._unfinished = n

    def _take(
        self,
        index: int,
        token_ids: list[int] | None,
        logprobs: list[float | None],
        text: str | None,
        finish_reason: str | None,
    ) -> None:
        if index >= self.n:
            raise _broken(f"choice index {index} out of range")
        generated = self.output.choices[index]
        if generated.finish_reason is not None:
            raise _broken(f"output for choice {index} after it finished")
        ids = token_ids or []
        if len(ids) != len(logprobs):
            raise _broken("token ids and logprobs are not aligned")
        if ids:
            values = [value for value in logprobs if value is not None]
            if len(values) != len(ids):
                raise _broken("a generated token has no logprob")
            generated.token_ids.extend(ids)
            generated.logprobs.extend(values)
            self.completion_tokens += len(ids)
            if len(generated.token_ids) > self.max_tokens:
                raise _broken("the miner sent more tokens than max_tokens")
        if text:
            self._texts[index].append(text)
        if finish_reason is not None:
            generated.finish_reason = finish_reason
            self._unfinished -= 1

    def feed(self, items: list[MinerChatChunk] | list[MinerCompletionChunk]) -> None:
        for chunk in items:
            if isinstance(chunk, MinerChatChunk):
                for chat in chunk.choices:
                    entries = chat.logprobs.content if chat.logprobs is not None else None
                    values: list[float | None] = [e.logprob for e in entries or ()]
                    self._take(
                        chat.index, chat.token_ids, values, chat.delta.content, chat.finish_reason
                    )
            else:
                for choice in chunk.choices:
                    miner = choice.logprobs
                    if miner is not None and len(miner.tokens) != len(miner.token_logprobs):
                        raise _broken("token ids and logprobs are not aligned")
                    values = list(miner.token_logprobs) if miner is not None else []
                    self._take(
                        choice.index, choice.token_ids, values, choice.text, choice.finish_reason
                    )

    def finish(self) -> TextOutput:
        if self._unfinished > 0:
            raise _broken("the stream ended before every choice finished")
        for index, generated in enumerate(self.output.choices):
            generated.text = "".join(self._texts[index])
        return self.output
