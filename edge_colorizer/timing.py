"""One way to time things: warm up, synchronise the device around each run, ``time.perf_counter``,
report the median (p50) and the 95th percentile in milliseconds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Timing:
    times_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_ms(
    fn: Callable[[], object],
    repeats: int = 20,
    warmup: int = 3,
    synchronize: Callable[[], None] | None = None,
) -> Timing:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; ``synchronize`` (e.g.
    ``torch.cuda.synchronize``) is called before and after each timed run so queued device work counts."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    sync = synchronize or (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t) * 1000)
    return Timing(tuple(times))
