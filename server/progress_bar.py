"""Progress bars on stderr that log lines never write into.

A log record emitted while a bar is drawn (the model export's INFO line on an ingest's first
batch, a parser's warning) went to the same stderr after the bar's last frame, on its line:
the line showed a broken bar with the log text on it, and the bar was drawn again below, so
the user saw two bars. While a :class:`ProgressBar` is open, the root logger's console
handlers write through ``tqdm.write`` instead (tqdm's ``logging_redirect_tqdm``): the bar is
cleared, the record printed on a line of its own, and the bar redrawn under it.

A terminal that reports its size as 0 x 0 (some containers and serial consoles do) made tqdm
draw nothing at all (0 rows: the bar counts as scrolled off) or a one-character bar cut short
(0 columns); such a terminal is taken to be :data:`DEFAULT_SIZE` instead (see
:func:`screen_shape`).
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from typing import Any, TextIO

DEFAULT_SIZE = (80, 24)
"""(columns, rows) assumed for a terminal that reports 0 or cannot be asked, unless the
``COLUMNS`` / ``LINES`` environment variables say otherwise."""


def _from_env(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def screen_shape(stream: Any) -> tuple[int | None, int | None]:
    """(columns, rows) for a tqdm bar on ``stream``: one less than the terminal's (the margin
    tqdm's own probe leaves), each dimension the terminal reports as 0 or cannot tell taken
    from ``COLUMNS`` / ``LINES`` or :data:`DEFAULT_SIZE`; (None, None) when ``stream`` is not
    a terminal (tqdm's default: a 10-character bar, no width limit)."""
    try:
        fd = stream.fileno()
        if not os.isatty(fd):
            return None, None
    except (AttributeError, ValueError, OSError):  # io.UnsupportedOperation is both
        return None, None
    try:
        columns, rows = os.get_terminal_size(fd)
    except OSError:
        columns = rows = 0
    columns = columns or _from_env("COLUMNS", DEFAULT_SIZE[0])
    return columns - 1, (rows or _from_env("LINES", DEFAULT_SIZE[1])) - 1


class ProgressBar:
    """A tqdm bar on ``stream`` (default stderr; ``total`` items of ``unit``, labelled
    ``desc``), following the terminal's size as it changes; ``enabled`` False draws nothing
    and redirects nothing. Close it (it is a context manager too)."""

    def __init__(
        self,
        total: int,
        unit: str,
        desc: str | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
    ):
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._redirect = ExitStack()
        if enabled:
            self._redirect.enter_context(logging_redirect_tqdm())
        stream = stream or sys.stderr
        columns, rows = screen_shape(stream)
        self.bar: Any = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            file=stream,
            ncols=columns,
            nrows=rows,
            disable=not enabled,
        )
        if columns is not None:
            # tqdm's dynamic_ncols takes only True (its own probe, which passes a 0 x 0
            # terminal on as -1 x -1); the attribute it then calls before each frame is ours
            self.bar.dynamic_ncols = screen_shape

    @property
    def n(self) -> int:
        """Items counted so far."""
        return int(self.bar.n)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items."""
        self.bar.update(n)

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the counts (drawn with the next update)."""
        self.bar.set_postfix(refresh=False, **values)

    def close(self) -> None:
        """Draw the final frame, end its line, and give the log handlers back."""
        try:
            self.bar.close()
        finally:
            self._redirect.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
