"""A clean exit on SIGTERM and SIGINT: what this process owns is released before it goes.

Python's default SIGTERM ends the process at once, without ``finally`` blocks: a store owner
stopped by its client or by a service manager left its lock record and its socket behind,
which the next ``doctor`` reported as a stale lock. :func:`terminate_like_interrupt` makes
SIGTERM raise :class:`Terminated` (a KeyboardInterrupt: code that stops cleanly on Ctrl-C stops
the same way), so commands unwind through their ``finally`` blocks and close their store
(lock record truncated, socket removed: only this process's own, see shared_store.py).

A stdio server cannot unwind all the way: the MCP SDK reads stdin on a worker thread that no
cancellation interrupts, so the event loop waits for a line (or EOF) that may never come.
:class:`ExitOnSignal` runs the server's own release on a thread and then leaves with
``os._exit``, the only exit that does not wait for that thread. kill -9 cannot be caught: its
record stays, and the next process to open the store takes it over (doctor says so).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

logger = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM (or another stop signal) received; ``signum`` names it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by a signal: 128 + its number."""
        return 128 + self.signum


_pending: int | None = None
"""The stop signal received, once one was (see :func:`raise_if_terminated`)."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    global _pending
    _pending = signum
    # Python runs a handler wherever the main thread is; an exception raised inside a
    # finalizer (a __del__ run by the garbage collector) is printed and dropped, and the
    # command went on to the end (seen: an ingest finished and exited 0). There the exception
    # waits for the next checkpoint instead.
    if not _in_finalizer(frame):
        raise Terminated(signum)


def _in_finalizer(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` when a stop signal arrived (in the main thread only; a no-op
    elsewhere). Long loops call it at safe points, so a signal whose exception could not be
    raised where it arrived still stops the command there."""
    if _pending is not None and threading.current_thread() is threading.main_thread():
        raise Terminated(_pending)


def terminate_like_interrupt() -> None:
    """From now on SIGTERM raises :class:`Terminated` in the main thread (nothing when called
    from another thread: only the main thread may set handlers, and it gets the signal)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


class ExitOnSignal:
    """While active: on SIGTERM or SIGINT, run ``release`` on a daemon thread, then exit the
    process with 128 + the signal's number (stdout and stderr flushed first).

    ``release`` must be idempotent and thread-safe: the main thread may run the same cleanup
    as it unwinds. A second signal while releasing is ignored (the release is bounded by its
    own timeouts). Use as a context manager around the serving call; the previous handlers
    come back on exit.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, release: Callable[[], None]) -> None:
        self.release = release
        self._started = threading.Event()
        self._previous: dict[int, object] = {}

    def __enter__(self) -> ExitOnSignal:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread gets signals and may set handlers
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._started.is_set():
            return
        self._started.set()
        logger.info("%s received: releasing the store, then exiting", signal.Signals(signum).name)
        threading.Thread(
            target=self._release_and_exit, args=(signum,), name="exit-on-signal", daemon=True
        ).start()

    def _release_and_exit(self, signum: int) -> None:
        code = 128 + signum
        try:
            self.release()
        except Exception:  # still leave: the signal asked for it
            logger.exception("releasing before exit failed")
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
