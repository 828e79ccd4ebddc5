"""What every command shares: the stderr console, the progress bar, options defined once, signals."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from edge_colorizer.io import DEFAULT_MAX_PIXELS
from edge_colorizer.stopping import Stopped, check_stop, clear_stop, record_stop

err = Console(stderr=True)


def say(message: str) -> None:
    """One line on stderr, printed as is (file names may contain brackets)."""
    err.print(message, soft_wrap=True, markup=False, highlight=False)


def progress_bar() -> Progress:
    """A bar on a terminal; nothing at all when stderr is a file or a pipe (logs get only the lines)."""
    return live_progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
    )


@contextmanager
def working(description: str) -> Iterator[None]:
    """A spinner with the elapsed time for work whose length is unknown (a conversion, a parity check);
    as the bar, only on a terminal. Lines said meanwhile are printed above it."""
    with live_progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn()) as live:
        live.add_task(description, total=None)
        yield


_quiet = [False]  # whether converters_quiet is in force (it does not nest: the outer one rules)


def verbose() -> bool:
    """EDGE_COLORIZER_VERBOSE set to anything but '', 0, false, no or off."""
    return os.environ.get("EDGE_COLORIZER_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off")


@contextmanager
def converters_quiet() -> Iterator[None]:
    """What converters and runtimes print while they work (LiteRT's stage lines, tqdm bars, NNCF's
    progress, warnings, native logs) is dropped, so a terminal, a log and a pipe get this tool's lines
    only; ``EDGE_COLORIZER_VERBOSE=1`` shows it. The bars and ``say`` keep writing to the real stderr.

    Works on the process's file descriptors 1 and 2, so only where sys.stdout/sys.stderr are them (not
    under a test runner's capture). The descriptors are switched with the stop signals held, so a
    Ctrl-C or SIGTERM (an exception from stop_cleanly's handler) never leaves them switched."""
    try:
        real = sys.stdout.fileno() == 1 and sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both of the last two
        real = False
    if not real or verbose() or _quiet[0]:
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    previous_file, previous_show = getattr(err, "_file", None), warnings.showwarning
    saved: list[int] = []
    console_stream = None
    try:
        with open(os.devnull, "w") as sink:
            try:
                with _signals_held():
                    saved = [os.dup(1), os.dup(2)]
                    console_stream = os.fdopen(
                        os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace"
                    )
                    err.file = console_stream
                    warnings.showwarning = _dropped  # the filters stay as they are (an SDK may set its own)
                    _quiet[0] = True
                    os.dup2(sink.fileno(), 1)
                    os.dup2(sink.fileno(), 2)
                yield
            finally:
                with _signals_held():
                    for stream in (sys.stdout, sys.stderr):
                        try:
                            stream.flush()
                        except (OSError, ValueError):
                            pass
                    for fd, saved_fd in zip((1, 2), saved, strict=False):
                        os.dup2(saved_fd, fd)
                    _quiet[0] = False
                    warnings.showwarning = previous_show
                    err.file = previous_file
    finally:
        if console_stream is not None:
            console_stream.close()
        for fd in saved:
            os.close(fd)


def _dropped(*args, **kwargs) -> None:
    pass


@contextmanager
def _signals_held() -> Iterator[None]:
    """A stop signal arriving in the block is held until it ends, then delivered to the handler that
    was in force (the block runs whole: an exception from that handler cannot cut it)."""
    got: list[int] = []
    previous = _install(lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        if got:
            signal.raise_signal(got[0])


def live_progress(*columns) -> Progress:
    """A rich display of these columns on stderr, only on a terminal, gone when it ends (every bar here)."""
    # under converters_quiet, no redirection of sys.stdout/sys.stderr into the display (what converters
    # print is dropped, not shown above the bar); elsewhere a stray print goes above the bar as rich does
    return Progress(
        *columns,
        console=err,
        transient=True,
        disable=not err.is_terminal,
        redirect_stdout=not _quiet[0],
        redirect_stderr=not _quiet[0],
    )


class FiniteRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan and infinities: a range check lets nan through (every
    comparison with it is false), and an open upper end lets inf through."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def not_empty(ctx: click.Context, param: click.Parameter, value):
    """A file, folder or model given as '' (an unset shell variable, say) is a usage error; opened as a path
    it would be the current folder."""
    for item in value if isinstance(value, tuple) else (value,):
        if isinstance(item, str) and not item.strip():
            raise click.BadParameter("empty; name a file, folder or model")
    return value


def _multiple_of_8(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value % 8:
        raise click.BadParameter(f"{value} is not a multiple of 8")
    return value


def size_option(help_text: str = "Network input size (L is resized to it); default: the size stored with the model."):
    # the network halves its input three times; above 1024 (what training allows) memory grows past
    # gigabytes for no gain
    return click.option(
        "--size",
        type=click.IntRange(16, 1024),
        default=None,
        callback=_multiple_of_8,
        help=f"{help_text} 16-1024, a multiple of 8.",
    )


def chroma_gain_option(default_help: str):
    from edge_colorizer.models.ab_bins import MAX_CHROMA_GAIN

    return click.option(
        "--chroma-gain",
        type=FiniteRange(0, MAX_CHROMA_GAIN, min_open=True),
        default=None,
        help="Multiply the predicted colour by this (hue kept): above 1 more colourful, below 1 less; "
        f"{default_help} 0-{MAX_CHROMA_GAIN:g}.",
    )


def max_pixels_option():
    return click.option(
        "--max-pixels",
        type=click.IntRange(1),
        default=DEFAULT_MAX_PIXELS,
        show_default=True,
        help="Refuse larger images (checked before decoding); memory is about 100 bytes per pixel.",
    )


def threads_option(default: int = 0):
    return click.option(
        "--threads", type=click.IntRange(0, 512), default=default, show_default=True, help="CPU threads (0 = default)."
    )


device_option = click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)


@contextmanager
def stop_cleanly() -> Iterator[None]:
    """SIGTERM, SIGHUP and Ctrl-C stop the command by an exception in the main thread, so every
    ``finally`` runs (an unfinished output's temporary is removed); then one line and exit 128 + signal.

    Python's default for SIGTERM is to die on the spot, which is what left temporaries behind.
    """

    def handler(signum, frame):
        raise record_stop(signum)  # recorded too: a library that swallows the exception cannot lose it

    clear_stop()
    previous = _install(handler)
    try:
        try:
            yield
        except Exception:  # an error a stop caused (a library that wrapped it in its own) is the stop
            check_stop()
            raise
        check_stop()  # the block ended normally although a stop arrived (something swallowed it)
    except Stopped as stop:
        say(f"stopped by {stop.name}; unfinished outputs were removed")
        raise SystemExit(stop.code) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        clear_stop()


def _install(handler) -> dict:
    previous = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None), signal.SIGINT):
        if sig is None:
            continue
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread (an embedding application): leave signals alone
            pass
    return previous


@contextmanager
def stop_after_step(event: threading.Event) -> Iterator[list[int]]:
    """For resumable work (training): the first SIGTERM, SIGHUP or Ctrl-C sets ``event``, which the
    work checks at its safe points (the training loop: after each step, then it saves its state and
    returns unfinished); a second one stops at once (:class:`Stopped`, as :func:`stop_cleanly`).
    Yields the list that receives the signal's number, for the command to end with 128 + it."""
    got: list[int] = []

    def handler(signum, frame):  # no printing here: a signal may land inside a write to stderr
        if got:
            raise Stopped(signum)
        got.append(signum)
        event.set()

    event.clear()
    previous = _install(handler)
    try:
        yield got
    except Stopped as stop:  # the second signal: what was saved last is what --resume continues from
        say(f"stopped by {stop.name} at once; --resume continues from the last saved state")
        raise SystemExit(stop.code) from None
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
        event.clear()


def end_if_stopped(got: list[int], unfinished: Callable[[], bool]) -> None:
    """After :func:`stop_after_step`: one line and exit 128 + signal if the stop left the work unfinished
    (``unfinished()`` asks the work's result; work that finished anyway ends normally)."""
    if got and unfinished():
        say(f"stopped by {signal.Signals(got[0]).name}; the state is saved: continue with --resume")
        raise SystemExit(128 + got[0])


@contextmanager
def no_traceback(what: str) -> Iterator[None]:
    """An unexpected exception ends the command as one line (exit 1), never as a traceback."""
    try:
        yield
    except (click.ClickException, click.Abort, click.exceptions.Exit, SystemExit, Stopped):
        raise
    except Exception as exc:
        from edge_colorizer.io import one_line

        raise click.ClickException(f"{what} failed unexpectedly ({one_line(exc)})") from None
