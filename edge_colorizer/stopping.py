"""A stop asked for by a signal (SIGTERM, SIGHUP, Ctrl-C), kept where library code can see it.

The CLI's handler raises :class:`Stopped` in the main thread; a third-party library that catches every
exception (an exporter that wraps what it caught and lets the caller fall back to another path) can
swallow it. What was received is therefore also recorded, and work about to commit a result, or to try
a fallback after a failure, calls :func:`check_stop` first: a swallowed stop is raised again there."""

from __future__ import annotations

import signal

_received: list[int] = []


class Stopped(BaseException):
    """The command was stopped by a signal (SIGTERM, SIGHUP) or Ctrl-C; ``code`` is 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.code = 128 + signum


def record_stop(signum: int) -> Stopped:
    """Remember that ``signum`` asked for a stop; returns the exception to raise."""
    _received.append(signum)
    return Stopped(signum)


def check_stop() -> None:
    """Raise :class:`Stopped` if a stop was asked for since the last :func:`clear_stop`."""
    if _received:
        raise Stopped(_received[0])


def clear_stop() -> None:
    _received.clear()
