"""Observed upstream latency per model, for the `speed` priority.

Each worker keeps the latencies of the requests it served recently; that
is a fair sample of "recent logs" without a query per request.
"""

from __future__ import annotations

from collections import deque
from statistics import median

WINDOW = 200
UNKNOWN = float("inf")


class LatencyStats:
    def __init__(self) -> None:
        self._samples: dict[str, deque[float]] = {}
        self._p50: dict[str, float] = {}

    def record(self, model_key: str, latency_ms: float) -> None:
        samples = self._samples.setdefault(model_key, deque(maxlen=WINDOW))
        samples.append(latency_ms)
        self._p50.pop(model_key, None)

    def seed(self, model_key: str, latencies: list[float]) -> None:
        samples = self._samples.setdefault(model_key, deque(maxlen=WINDOW))
        samples.extend(latencies[-WINDOW:])
        self._p50.pop(model_key, None)

    def has_samples(self, model_key: str) -> bool:
        return bool(self._samples.get(model_key))

    def p50(self, model_key: str) -> float:
        if model_key not in self._p50:
            samples = self._samples.get(model_key)
            self._p50[model_key] = median(samples) if samples else UNKNOWN
        return self._p50[model_key]

    def clear(self) -> None:
        self._samples.clear()
        self._p50.clear()

    def snapshot(self) -> dict[str, float]:
        return {key: self.p50(key) for key in self._samples}


latency_stats = LatencyStats()
