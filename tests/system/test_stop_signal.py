"""A stop signal stops a command even when it lands where Python cannot raise.

Invariant: after SIGTERM, a CLI command raises Terminated at the latest at its next checkpoint
(shutdown.raise_if_terminated), wherever the signal arrived. Python runs a signal handler at
any point of the main thread; an exception it raises inside a finalizer (``__del__``, run by the
garbage collector) is printed and dropped, and a terminated ingest once ran to its end and
exited 0 (seen in CI). Real signals, delivered to this process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from server import shutdown


@pytest.fixture
def sigterm_raises(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(shutdown, "_pending", None)
    previous = signal.getsignal(signal.SIGTERM)
    shutdown.terminate_like_interrupt()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Finalized:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the finalizer
        for _ in range(1000):  # bytecode boundaries: where Python runs the handler
            pass


def test_a_signal_inside_a_finalizer_stops_at_the_next_checkpoint(sigterm_raises: None) -> None:
    shutdown.raise_if_terminated()  # nothing pending: no-op
    obj = _Finalized()
    del obj  # __del__ runs now; an exception raised in it would be printed and dropped
    with pytest.raises(shutdown.Terminated) as raised:
        shutdown.raise_if_terminated()
    assert raised.value.exit_code == 128 + signal.SIGTERM


def test_a_signal_elsewhere_raises_where_it_lands(sigterm_raises: None) -> None:
    with pytest.raises(shutdown.Terminated):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):
            pass
