"""Per-provider circuit breaker, shared by every worker through Redis.

After BREAKER_THRESHOLD consecutive retryable failures the provider is
skipped for BREAKER_COOLDOWN seconds; then one probe is let through
(half-open) and its outcome closes or re-opens the circuit.

With settings.REDIS_URL the state lives in Redis, so one worker's outage
evidence protects all of them:

    nr:breaker:<provider>:failures  consecutive failures (INCR; expires when quiet)
    nr:breaker:<provider>:open      exists while open; its TTL is the cool-down left
    nr:breaker:<provider>:probe     held by the one worker probing while half-open

TTLs rather than timestamps keep machines with skewed clocks in agreement.

`allow()` sits on the hot path, so it reads a copy of the shared state that
is at most REFRESH_SECONDS old: one small round trip per provider per
refresh, never one per request. Redis is written on failures and on state
transitions only (trip, probe, close), never on an ordinary success.

Redis is an optimisation, not a dependency: the breaker keeps local state
for every call too, and when Redis errors (or is absent) it answers from
that, retrying Redis every REDIS_RETRY_SECONDS. The calls are synchronous
but bounded by a socket timeout of at most REDIS_TIMEOUT_CAP, so a dead
Redis costs one short stall per retry interval, not one per request.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger("neuroroute.breaker")

DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN = 30.0
REFRESH_SECONDS = 0.5
REDIS_RETRY_SECONDS = 5.0
# The breaker runs on the event loop: any wait on Redis stalls every request
# the worker holds, so it never waits longer than this whatever the setting.
REDIS_TIMEOUT_CAP = 0.05
KEY_PREFIX = "nr:breaker:"
PROVIDERS_KEY = KEY_PREFIX + "providers"  # a set, so /health can list circuits other workers opened
REDIS_ERRORS = (RedisError, OSError)

# One round trip for a failure: count it, and open the circuit when it is
# the threshold-th in a row or when it is the verdict of a failed probe.
FAILURE_SCRIPT = """
local failures = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[5])
if ARGV[3] == '1' or (failures >= tonumber(ARGV[2]) and redis.call('EXISTS', KEYS[2]) == 0) then
    redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
    redis.call('DEL', KEYS[3])
end
return {failures, redis.call('PTTL', KEYS[2])}
"""


@dataclass
class CircuitState:
    """One provider's circuit as this process sees it (monotonic times)."""

    failures: int = 0
    open_until: float = 0.0  # 0 = closed; in the past = half-open
    probe_until: float = 0.0  # this process holds the probe until then

    @property
    def tripped(self) -> bool:
        return self.open_until != 0.0


@dataclass
class SharedView:
    """The Redis state of one provider, as last read."""

    fetched_at: float
    failures: int
    open_until: float  # monotonic; 0 = no open key


class CircuitBreaker:
    def __init__(
        self,
        threshold: int | None = None,
        cool_down: float | None = None,
        *,
        redis_url: str | None = None,
        use_settings_redis: bool = True,
    ) -> None:
        """Threshold, cool-down and Redis URL default to the settings, read when used."""
        self._threshold = threshold
        self._cool_down = cool_down
        self._redis_url = redis_url
        self._use_settings_redis = use_settings_redis
        self._settings_url: str | None = None
        self._settings_read_at = float("-inf")
        self._lock = threading.Lock()
        self._states: dict[str, CircuitState] = {}
        self._shared: dict[str, SharedView] = {}
        self._client: Any = None
        self._client_url: str | None = None
        self._failure_script: Any = None
        self._redis_down_until = 0.0
        self._redis_down_logged = False

    # -- configuration ------------------------------------------------------

    @property
    def threshold(self) -> int:
        if self._threshold is not None:
            return self._threshold
        return int(getattr(settings, "NEUROROUTE", {}).get("BREAKER_THRESHOLD", DEFAULT_THRESHOLD))

    @property
    def cool_down(self) -> float:
        if self._cool_down is not None:
            return self._cool_down
        return float(getattr(settings, "NEUROROUTE", {}).get("BREAKER_COOLDOWN", DEFAULT_COOLDOWN))

    @property
    def redis_url(self) -> str | None:
        if self._redis_url is not None:
            return self._redis_url
        if not self._use_settings_redis:
            return None
        # Settings are read at most once a second: this sits on the hot path.
        now = time.monotonic()
        if now - self._settings_read_at > 1.0:
            self._settings_url = getattr(settings, "REDIS_URL", None)
            self._settings_read_at = now
        return self._settings_url

    def _redis(self) -> Any:
        """The client, or None while Redis is unconfigured or recently failed."""
        url = self.redis_url
        if not url or time.monotonic() < self._redis_down_until:
            return None
        if self._client is None or self._client_url != url:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            timeout = min(getattr(settings, "REDIS_SOCKET_TIMEOUT", REDIS_TIMEOUT_CAP), REDIS_TIMEOUT_CAP)
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                # redis-py retries a failed command 10 times with backoff by
                # default: seconds of stall against a dead server.
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
            )
            self._client_url = url
            self._failure_script = self._client.register_script(FAILURE_SCRIPT)
        return self._client

    def _redis_failed(self, exc: Exception) -> None:
        self._redis_down_until = time.monotonic() + REDIS_RETRY_SECONDS
        self._shared.clear()  # stale by the time Redis answers again
        if not self._redis_down_logged:
            self._redis_down_logged = True
            logger.warning(
                "circuit breaker cannot reach Redis; using per-process state",
                extra={"error": str(exc)[:200], "retry_in_s": REDIS_RETRY_SECONDS},
            )

    def _redis_ok(self) -> None:
        if self._redis_down_logged:
            self._redis_down_logged = False
            logger.info("circuit breaker reconnected to Redis; sharing state again")

    @staticmethod
    def _keys(provider: str) -> tuple[str, str, str]:
        base = KEY_PREFIX + provider
        return base + ":failures", base + ":open", base + ":probe"

    def _failures_ttl_ms(self) -> int:
        # Failures far apart are not an outage: forget the count after a
        # quiet spell of a few cool-downs.
        return max(int(self.cool_down * 4000), 60_000)

    # -- shared state -------------------------------------------------------

    def _shared_view(self, provider: str, now: float) -> SharedView | None:
        """The cached Redis state, refreshed when older than REFRESH_SECONDS; None = use local."""
        view = self._shared.get(provider)
        if view is not None and now - view.fetched_at < REFRESH_SECONDS:
            return view  # the common case: no settings lookups, no I/O
        client = self._redis()
        if client is None:
            return None
        failures_key, open_key, _probe = self._keys(provider)
        try:
            pipe = client.pipeline(transaction=False)
            pipe.get(failures_key)
            pipe.pttl(open_key)
            raw_failures, open_ms = pipe.execute()
        except REDIS_ERRORS as exc:
            self._redis_failed(exc)
            return None
        self._redis_ok()
        view = SharedView(now, int(raw_failures or 0), now + open_ms / 1000 if open_ms > 0 else 0.0)
        self._shared[provider] = view
        return view

    def _claim_shared_probe(self, provider: str) -> bool | None:
        """Take the cluster-wide probe; None when Redis could not say."""
        client = self._redis()
        if client is None:
            return None
        _failures, _open, probe_key = self._keys(provider)
        try:
            claimed = client.set(probe_key, "1", nx=True, px=max(int(self.cool_down * 1000), 1))
        except REDIS_ERRORS as exc:
            self._redis_failed(exc)
            return None
        return bool(claimed)

    # -- the public API -----------------------------------------------------

    def allow(self, provider: str) -> bool:
        now = time.monotonic()
        with self._lock:
            state = self._states.setdefault(provider, CircuitState())
            view = self._shared_view(provider, now)
            if view is None:
                return self._allow_local(state, now)
            if view.open_until > now:
                return False
            if view.failures < self.threshold:
                return True
            # Half-open: the cool-down has passed but no probe has closed it.
            if state.probe_until > now:
                return False  # this worker's probe is still out
            claimed = self._claim_shared_probe(provider)
            if claimed is None:
                return self._allow_local(state, now)
            if claimed:
                state.probe_until = now + self.cool_down
            return claimed

    def _allow_local(self, state: CircuitState, now: float) -> bool:
        if not state.tripped:
            return True
        if now < state.open_until:
            return False
        if state.probe_until > now:
            return False  # one probe at a time while half-open
        # A probe that never reported (a non-retryable error, a cancelled
        # request) must not hold the circuit half-open forever, hence a lease.
        state.probe_until = now + self.cool_down
        return True

    def success(self, provider: str) -> None:
        now = time.monotonic()
        with self._lock:
            state = self._states.get(provider)
            probing = state is not None and state.probe_until > now
            view = self._shared.get(provider)
            open_until = view.open_until if view is not None else (state.open_until if state else 0.0)
            if open_until > now and not probing:
                return  # a request that started before the trip: the probe decides
            if state is not None and (state.failures or state.tripped or state.probe_until):
                self._states[provider] = CircuitState()
            # Only a transition is worth a write: the probe closing the
            # circuit, or the first success after counted failures.
            if view is None or not (probing or view.failures):
                return
            client = self._redis()
            if client is None:
                return
            self._shared[provider] = SharedView(view.fetched_at, 0, 0.0)
            try:
                client.delete(*self._keys(provider))
            except REDIS_ERRORS as exc:
                self._redis_failed(exc)

    def failure(self, provider: str) -> None:
        now = time.monotonic()
        with self._lock:
            state = self._states.setdefault(provider, CircuitState())
            probing = state.probe_until > now
            state.failures += 1
            if probing or state.failures >= self.threshold:
                state.open_until = now + self.cool_down
                state.probe_until = 0.0
            client = self._redis()
            if client is None:
                return
            failures_key, open_key, probe_key = self._keys(provider)
            try:
                failures, open_ms = self._failure_script(
                    keys=[failures_key, open_key, probe_key, PROVIDERS_KEY],
                    args=[
                        self._failures_ttl_ms(),
                        self.threshold,
                        "1" if probing else "0",
                        max(int(self.cool_down * 1000), 1),
                        provider,
                    ],
                )
            except REDIS_ERRORS as exc:
                self._redis_failed(exc)
                return
            self._redis_ok()
            self._shared[provider] = SharedView(now, int(failures), now + open_ms / 1000 if open_ms > 0 else 0.0)

    def status(self) -> dict[str, dict]:
        """Every known circuit; shared ones too when Redis answers (not on the hot path)."""
        now = time.monotonic()
        with self._lock:
            providers = set(self._states)
            client = self._redis()
            shared = client is not None
            if shared:
                try:
                    providers |= {name.decode() for name in client.smembers(PROVIDERS_KEY)}
                except REDIS_ERRORS as exc:
                    self._redis_failed(exc)
                    shared = False
            result = {}
            for provider in sorted(providers):
                view = self._shared_view(provider, now) if shared else None
                if view is not None:
                    failures, open_until = view.failures, view.open_until
                    tripped = failures >= self.threshold or open_until > now
                else:
                    local = self._states.get(provider, CircuitState())
                    failures, open_until, tripped = local.failures, local.open_until, local.tripped
                if open_until > now:
                    state = "open"
                elif tripped:
                    state = "half_open"
                else:
                    state = "closed"
                result[provider] = {
                    "state": state,
                    "consecutive_failures": failures,
                    "retry_in_s": round(open_until - now, 1) if state == "open" else 0,
                    "shared": view is not None,
                }
            return result

    def reset(self) -> None:
        """Forget every circuit, here and in Redis (tests, and operators after a fix)."""
        with self._lock:
            providers = set(self._states) | set(self._shared)
            self._states.clear()
            self._shared.clear()
            self._settings_read_at = float("-inf")
            self._redis_down_until = 0.0
            client = self._redis()
            if client is not None:
                try:
                    providers |= {name.decode() for name in client.smembers(PROVIDERS_KEY)}
                    keys = [key for provider in providers for key in self._keys(provider)]
                    client.delete(PROVIDERS_KEY, *keys)
                except REDIS_ERRORS as exc:
                    self._redis_failed(exc)
            self._client = None  # the next call re-reads settings.REDIS_URL


breaker = CircuitBreaker()
