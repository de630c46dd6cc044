"""Per-provider circuit breaker.

After FAILURE_THRESHOLD consecutive retryable failures the provider is
skipped for COOL_DOWN seconds; then one probe is let through (half-open)
and its outcome closes or re-opens the circuit. State lives in this
process; routing.breaker_store shares it through Redis when configured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

FAILURE_THRESHOLD = 5
COOL_DOWN = 30.0


@dataclass
class CircuitState:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class CircuitBreaker:
    def __init__(self, threshold: int = FAILURE_THRESHOLD, cool_down: float = COOL_DOWN) -> None:
        self.threshold = threshold
        self.cool_down = cool_down
        self._states: dict[str, CircuitState] = {}

    def allow(self, provider: str) -> bool:
        state = self._states.get(provider)
        if state is None or state.open_until == 0.0:
            return True
        if time.monotonic() < state.open_until:
            return False
        if state.probing:
            return False  # one probe at a time while half-open
        state.probing = True
        return True

    def success(self, provider: str) -> None:
        state = self._states.get(provider)
        if state is not None and (state.failures or state.open_until):
            self._states[provider] = CircuitState()

    def failure(self, provider: str) -> None:
        state = self._states.setdefault(provider, CircuitState())
        state.failures += 1
        if state.probing or state.failures >= self.threshold:
            state.open_until = time.monotonic() + self.cool_down
            state.probing = False

    def status(self) -> dict[str, dict]:
        now = time.monotonic()
        result = {}
        for provider, state in self._states.items():
            if state.open_until and now < state.open_until:
                status = "open"
            elif state.open_until:
                status = "half_open"
            else:
                status = "closed"
            result[provider] = {
                "state": status,
                "consecutive_failures": state.failures,
                "retry_in_s": round(max(0.0, state.open_until - now), 1) if status == "open" else 0,
            }
        return result

    def reset(self) -> None:
        self._states.clear()


breaker = CircuitBreaker()
