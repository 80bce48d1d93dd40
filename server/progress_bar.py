"""Progress bars on stderr that log lines never write into.

A log record emitted while a bar is drawn (the model export's INFO line on an ingest's first
batch, a parser's warning) went to the same stderr after the bar's last frame, on its line:
the line showed a broken bar with the log text on it, and the bar was drawn again below, so
the user saw two bars. While a :class:`ProgressBar` is open, the root logger's console
handlers write through ``tqdm.write`` instead (tqdm's ``logging_redirect_tqdm``): the bar is
cleared, the record printed on a line of its own, and the bar redrawn under it.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import Any


class ProgressBar:
    """A tqdm bar on stderr (``total`` items of ``unit``, labelled ``desc``); ``enabled``
    False draws nothing and redirects nothing. Close it (it is a context manager too)."""

    def __init__(self, total: int, unit: str, desc: str | None = None, enabled: bool = True):
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._redirect = ExitStack()
        if enabled:
            self._redirect.enter_context(logging_redirect_tqdm())
        self.bar: Any = tqdm(
            total=total,
            desc=desc,
            unit=unit,
            file=sys.stderr,
            dynamic_ncols=True,
            disable=not enabled,
        )

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
