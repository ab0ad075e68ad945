"""Per-key RPM and TPM limits, atomic across gateway replicas: one Redis Lua script per admission.

Each limit is a token bucket that holds up to ``limit`` units and refills at ``limit`` per
minute, so a key can burst its whole minute's allowance and then proceeds at the steady rate;
no window boundary ever lets through twice the limit. Requests and tokens are checked and taken
together in one script (both or neither), with the server's clock (``TIME``), so replicas with
skewed clocks agree. The same script runs on production Redis and on the embedded Redis of
``sn19 dev``.

TPM is admitted on the estimate (prompt + max output tokens) and corrected once the real usage
is known (``correct``): unused tokens go back to the bucket, an overrun is taken (the bucket
may go below zero, which delays the key's next requests). On the request path the corrections
go through ``TokenCorrections``, which sums them per key and sends them at most every
``CORRECT_EVERY_S`` (one Redis call per key and interval, not one per request).

Header semantics follow OpenAI: ``x-ratelimit-limit-*`` the limit, ``-remaining-*`` what is
left now, ``-reset-*`` the time until the bucket is full again (``"1s"``, ``"6m0s"``, ``"250ms"``).
A 429 adds ``Retry-After`` (whole seconds) and ``retry-after-ms``.

If Redis is unreachable the limiter lets requests through (and logs): credit holds, not rate
limits, protect the money.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from billing.errors import NO_RETRY, RateLimitExceeded
from billing.keys import KeyContext

log = logging.getLogger(__name__)

_WINDOW_MS = 60_000
# TPM corrections are batched per key over this long.
CORRECT_EVERY_S = 0.05

# KEYS: requests bucket, tokens bucket. ARGV: rpm, tpm, tokens (limits <= 0: unlimited).
# Returns {allowed, requests_left, requests_reset_ms, tokens_left, tokens_reset_ms, retry_ms}.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = 60000
local function level(key, limit)
  if limit <= 0 then return 0 end
  local state = redis.call('HMGET', key, 'v', 't')
  local v = tonumber(state[1])
  if v == nil then return limit end
  local elapsed = math.max(0, now - tonumber(state[2]))
  return math.min(limit, v + elapsed * limit / window)
end
local function reset_ms(v, limit)
  if limit <= 0 or v >= limit then return 0 end
  return math.ceil((limit - v) * window / limit)
end
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local r = level(KEYS[1], rpm)
local k = level(KEYS[2], tpm)
local allowed = 1
local retry = 0
if rpm > 0 and r < 1 then
  allowed = 0
  retry = math.max(retry, math.ceil((1 - r) * window / rpm))
end
if tpm > 0 and k < cost then
  allowed = 0
  retry = math.max(retry, math.ceil((cost - k) * window / tpm))
end
if allowed == 1 then
  if rpm > 0 then
    r = r - 1
    redis.call('HSET', KEYS[1], 'v', tostring(r), 't', string.format('%.0f', now))
    redis.call('PEXPIRE', KEYS[1], window * 2)
  end
  if tpm > 0 then
    k = k - cost
    redis.call('HSET', KEYS[2], 'v', tostring(k), 't', string.format('%.0f', now))
    redis.call('PEXPIRE', KEYS[2], window * 2)
  end
end
return {allowed, math.floor(r), reset_ms(r, rpm), math.floor(k), reset_ms(k, tpm), retry}
"""

# KEYS: tokens bucket. ARGV: tpm, delta (tokens to give back; negative takes more).
_CORRECT = """
local state = redis.call('HMGET', KEYS[1], 'v', 't')
local v = tonumber(state[1])
if v == nil then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local elapsed = math.max(0, now - tonumber(state[2]))
v = math.min(limit, v + elapsed * limit / 60000)
v = math.min(limit, v + tonumber(ARGV[2]))
redis.call('HSET', KEYS[1], 'v', tostring(v), 't', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], 120000)
return 1
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
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._admit = redis.register_script(_ADMIT)
        self._correct = redis.register_script(_CORRECT)

    def _keys(self, key_id: int) -> tuple[str, str]:
        # One hash tag per key: both buckets live in the same slot on a Redis Cluster.
        base = f"{self._prefix}billing:rl:{{{key_id}}}"
        return f"{base}:r", f"{base}:t"

    async def admit(self, key: KeyContext, estimated_tokens: int) -> RateDecision:
        """Take one request and ``estimated_tokens`` from the key's buckets, or raise
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
                keys=list(self._keys(key.key_id)), args=[rpm, tpm, estimated_tokens]
            )
        except RedisError as exc:
            log.warning("rate limiter: Redis unavailable, admitting (%s)", exc)
            return UNLIMITED
        allowed, r_left, r_reset, t_left, t_reset, retry = (int(v) for v in raw)
        decision = RateDecision(
            allowed=bool(allowed),
            limit_requests=rpm or None,
            remaining_requests=r_left,
            reset_requests_s=r_reset / 1000,
            limit_tokens=tpm or None,
            remaining_tokens=t_left,
            reset_tokens_s=t_reset / 1000,
            retry_after_s=retry / 1000,
        )
        if not decision.allowed:
            which = "requests" if rpm > 0 and r_left < 1 else "tokens"
            raise RateLimitExceeded(
                f"Rate limit reached for this API key on {which} per minute. "
                f"Retry after {decision.headers()['retry-after']}s.",
                headers=decision.headers(),
            )
        return decision

    async def correct(self, key: KeyContext, estimated_tokens: int, actual_tokens: int) -> None:
        """Give back (or take) the difference between the admitted estimate and the usage."""
        tpm = key.tpm_limit or 0
        delta = estimated_tokens - actual_tokens
        if tpm <= 0 or delta == 0:
            return
        try:
            await self._correct(keys=[self._keys(key.key_id)[1]], args=[tpm, delta])
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
    """TPM corrections from settled requests, summed per key and sent in the background at
    most every ``CORRECT_EVERY_S``; ``drain`` sends what is pending (at shutdown)."""

    def __init__(self, limiter: RateLimiter) -> None:
        self._limiter = limiter
        # Pending corrections per key id: (key, tokens to give back; negative takes).
        self._pending: dict[int, tuple[KeyContext, int]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def give_back(self, key: KeyContext, estimated: int, used: int) -> None:
        if estimated == used or not key.tpm_limit:
            return
        _, pending = self._pending.get(key.key_id, (key, 0))
        self._pending[key.key_id] = (key, pending + estimated - used)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(CORRECT_EVERY_S, self._send)

    def _send(self) -> None:
        self._timer = None
        pending, self._pending = self._pending, {}
        if pending:
            self._spawn(self._correct_all(list(pending.values())))

    async def _correct_all(self, corrections: list[tuple[KeyContext, int]]) -> None:
        for key, delta in corrections:
            await self._limiter.correct(key, delta, 0)

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
