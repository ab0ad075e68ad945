"""Per-key RPM and TPM limits, atomic across gateway replicas: one Redis Lua script per admission.

A limit means what it says: **at most the limit in any 60-second window**, whoever counts and
whenever. Each limit is a sliding window kept as one-second buckets (a Redis hash: second →
units taken in it); an admission at second ``s`` counts the buckets ``s − 60 … s`` (61 of them),
so every 60-second interval, which touches at most 61 consecutive seconds, holds at most the
limit. (The price of the guarantee: a key that used its whole allowance in one second waits
61 s, not 60, for the next request.) Requests and tokens are checked and taken together (both or
neither), with the Redis server's clock (``TIME``), so replicas with skewed clocks agree. The
same script runs on production Redis and on the embedded Redis of ``sn19 dev``.

TPM is admitted on the estimate (prompt + max output tokens) and corrected once the real usage
is known (``correct``): the difference goes back to (or is taken from) the bucket the request
was admitted in, so unused tokens free the window and an overrun counts where it was admitted.
On the request path the corrections go through ``TokenCorrections``, which sums them per key
and bucket and sends them at most every ``CORRECT_EVERY_S`` (one Redis call per key and
interval, not one per request).

Header semantics follow OpenAI: ``x-ratelimit-limit-*`` the limit, ``-remaining-*`` what is
left in the window now, ``-reset-*`` the time until the window is empty again (``"1s"``,
``"6m0s"``, ``"250ms"``). A 429 adds ``Retry-After`` (whole seconds) and ``retry-after-ms``: the
time until enough of the oldest buckets leave the window for the request to fit.

If Redis is unreachable the limiter lets requests through (and logs): credit holds, not rate
limits, protect the money.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from billing.errors import NO_RETRY, RateLimitExceeded
from billing.keys.store import KeyContext

log = logging.getLogger(__name__)

# Seconds before the current one that still count (the window is WINDOW_BUCKETS + 1 buckets).
WINDOW_BUCKETS = 60
# TPM corrections are batched per key over this long.
CORRECT_EVERY_S = 0.05

# KEYS: requests window, tokens window (hashes: second -> units).
# ARGV: rpm, tpm, tokens (limits <= 0: unlimited), now in ms (0: the server's TIME).
# Returns {allowed, requests_left, requests_reset_ms, tokens_left, tokens_reset_ms, retry_ms,
#          second}.
_ADMIT = """
local now = tonumber(ARGV[4])
if now <= 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local second = math.floor(now / 1000)
local oldest = second - 60
-- The live buckets of a window, oldest first, and their sum (stale buckets deleted).
local function window(key)
  local raw = redis.call('HGETALL', key)
  local buckets = {}
  local sum = 0
  for i = 1, #raw, 2 do
    local s = tonumber(raw[i])
    local v = tonumber(raw[i + 1])
    if s == nil or s < oldest then
      redis.call('HDEL', key, raw[i])
    else
      buckets[#buckets + 1] = {s, v}
      sum = sum + v
    end
  end
  table.sort(buckets, function(a, b) return a[1] < b[1] end)
  return buckets, sum
end
-- How long until enough of the oldest buckets leave the window for `cost` to fit.
local function wait_ms(buckets, sum, cost, limit)
  local freed = sum
  for _, bucket in ipairs(buckets) do
    freed = freed - bucket[2]
    if freed + cost <= limit then
      return math.max(1, (bucket[1] + 61) * 1000 - now)
    end
  end
  return 61000
end
local function reset_ms(buckets)
  if #buckets == 0 then return 0 end
  return math.max(0, (buckets[#buckets][1] + 61) * 1000 - now)
end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local r_buckets, r = {}, 0
local k_buckets, k = {}, 0
if rpm > 0 then r_buckets, r = window(KEYS[1]) end
if tpm > 0 then k_buckets, k = window(KEYS[2]) end
local allowed = 1
local retry = 0
if rpm > 0 and r + 1 > rpm then
  allowed = 0
  retry = math.max(retry, wait_ms(r_buckets, r, 1, rpm))
end
if tpm > 0 and k + cost > tpm then
  allowed = 0
  retry = math.max(retry, wait_ms(k_buckets, k, cost, tpm))
end
if allowed == 1 then
  if rpm > 0 then
    r = r + 1
    redis.call('HINCRBY', KEYS[1], second, 1)
    redis.call('PEXPIRE', KEYS[1], 62000)
    r_buckets[#r_buckets + 1] = {second, 1}
  end
  if tpm > 0 then
    k = k + cost
    redis.call('HINCRBY', KEYS[2], second, cost)
    redis.call('PEXPIRE', KEYS[2], 62000)
    k_buckets[#k_buckets + 1] = {second, cost}
  end
end
return {allowed, rpm - r, reset_ms(r_buckets), tpm - k, reset_ms(k_buckets), retry, second}
"""

# KEYS: tokens window. ARGV: second the request was admitted in, delta (tokens to give back;
# negative takes more). Nothing happens once that bucket has left the window.
_CORRECT = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], -tonumber(ARGV[2]))
  return 1
end
return 0
"""


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: ``"250ms"``, ``"1s"``, ``"8.6s"``, ``"6m0s"``, ``"1h2m3s"``."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        text = f"{math.ceil(seconds * 10) / 10:.1f}".rstrip("0").rstrip(".")
        return f"{text}s"
    total = math.ceil(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"


@dataclass(frozen=True)
class RateDecision:
    """The outcome of an admission, and the ``x-ratelimit-*`` headers for the response."""

    allowed: bool
    limit_requests: int | None = None
    remaining_requests: int = 0
    reset_requests_s: float = 0.0
    limit_tokens: int | None = None
    remaining_tokens: int = 0
    reset_tokens_s: float = 0.0
    retry_after_s: float = 0.0
    # The window bucket (Unix second) the admission was counted in: TPM corrections go there.
    second: int = 0

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.limit_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.limit_requests)
            out["x-ratelimit-remaining-requests"] = str(max(0, self.remaining_requests))
            out["x-ratelimit-reset-requests"] = format_duration(self.reset_requests_s)
        if self.limit_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.limit_tokens)
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.remaining_tokens))
            out["x-ratelimit-reset-tokens"] = format_duration(self.reset_tokens_s)
        if not self.allowed:
            out["retry-after"] = str(max(1, math.ceil(self.retry_after_s)))
            out["retry-after-ms"] = str(max(1, math.ceil(self.retry_after_s * 1000)))
        return out


UNLIMITED = RateDecision(allowed=True)


class RateLimiter:
    """``clock`` (Unix seconds) replaces the Redis server's clock (tests)."""

    def __init__(
        self, redis: Redis, prefix: str, *, clock: Callable[[], float] | None = None
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._clock = clock
        self._admit = redis.register_script(_ADMIT)
        self._correct = redis.register_script(_CORRECT)

    def _keys(self, key_id: int) -> tuple[str, str]:
        # One hash tag per key: both windows live in the same slot on a Redis Cluster.
        base = f"{self._prefix}billing:rl:{{{key_id}}}"
        return f"{base}:rw", f"{base}:tw"

    def _now_ms(self) -> int:
        return int(self._clock() * 1000) if self._clock is not None else 0

    async def admit(self, key: KeyContext, estimated_tokens: int) -> RateDecision:
        """Take one request and ``estimated_tokens`` from the key's windows, or raise
        ``RateLimitExceeded`` (429) with ``Retry-After`` and the ``x-ratelimit-*`` headers.
        The returned decision's ``headers()`` go on the successful response."""
        rpm = key.rpm_limit or 0
        tpm = key.tpm_limit or 0
        if rpm <= 0 and tpm <= 0:
            return UNLIMITED
        if 0 < tpm < estimated_tokens:
            raise RateLimitExceeded(
                f"Request too large: it may use up to {estimated_tokens} tokens and this API "
                f"key's limit is {tpm} tokens per minute. Lower max_tokens or the input.",
                code="request_too_large",
                headers={**NO_RETRY, **_limit_headers(rpm, tpm)},
            )
        try:
            raw = await self._admit(
                keys=list(self._keys(key.key_id)),
                args=[rpm, tpm, estimated_tokens, self._now_ms()],
            )
        except RedisError as exc:
            log.warning("rate limiter: Redis unavailable, admitting (%s)", exc)
            return UNLIMITED
        allowed, r_left, r_reset, t_left, t_reset, retry, second = (int(v) for v in raw)
        decision = RateDecision(
            allowed=bool(allowed),
            limit_requests=rpm or None,
            remaining_requests=r_left,
            reset_requests_s=r_reset / 1000,
            limit_tokens=tpm or None,
            remaining_tokens=t_left,
            reset_tokens_s=t_reset / 1000,
            retry_after_s=retry / 1000,
            second=second,
        )
        if not decision.allowed:
            which = "requests" if rpm > 0 and r_left < 1 else "tokens"
            raise RateLimitExceeded(
                f"Rate limit reached for this API key on {which} per minute. "
                f"Retry after {decision.headers()['retry-after']}s.",
                headers=decision.headers(),
            )
        return decision

    async def correct(
        self, key: KeyContext, estimated_tokens: int, actual_tokens: int, *, second: int
    ) -> None:
        """Give back (or take) the difference between the estimate admitted at ``second``
        (``RateDecision.second``) and the real usage."""
        delta = estimated_tokens - actual_tokens
        if not key.tpm_limit or delta == 0:
            return
        try:
            await self._correct(keys=[self._keys(key.key_id)[1]], args=[second, delta])
        except RedisError as exc:
            log.warning("rate limiter: could not correct TPM (%s)", exc)


def _limit_headers(rpm: int, tpm: int) -> dict[str, str]:
    out = {}
    if rpm > 0:
        out["x-ratelimit-limit-requests"] = str(rpm)
    if tpm > 0:
        out["x-ratelimit-limit-tokens"] = str(tpm)
    return out


class TokenCorrections:
    """TPM corrections from settled requests, summed per key and window bucket and sent in the
    background at most every ``CORRECT_EVERY_S``; ``drain`` sends what is pending (at
    shutdown)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        # Pending corrections per (key id, second): (key, tokens to give back; negative takes).
        self._pending: dict[tuple[int, int], tuple[KeyContext, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def give_back(self, key: KeyContext, estimated: int, used: int, *, second: int) -> None:
        if estimated == used or not key.tpm_limit:
            return
        _, pending = self._pending.get((key.key_id, second), (key, 0))
        self._pending[(key.key_id, second)] = (key, pending + estimated - used)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CORRECT_EVERY_S, self._send)

    def _send(self) -> None:
        self._timer = None
        pending, self._pending = self._pending, {}
        if pending:
            self._spawn(self._correct_all(pending))

    async def _correct_all(self, pending: dict[tuple[int, int], tuple[KeyContext, int]]) -> None:
        for (_, second), (key, delta) in pending.items():
            await self._limiter.correct(key, delta, 0, second=second)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def drain(self, timeout: float = 10.0) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._send()
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=timeout)
