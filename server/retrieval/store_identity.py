"""Who a store is and whether its recorded owner still runs: identities, not paths.

A store directory can be copied (``cp -a``), moved or mounted elsewhere, and its lock file
travels with it, so a path written in the lock proves nothing about which store or which process
it belongs to. What does: the directory's (device, inode) pair, which a copy never shares with
its original, and a process's pid together with its start time, which a recycled pid never
repeats.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StoreIdentity:
    """The (device, inode) of a store directory: equal only for the same directory."""

    device: int
    inode: int

    @classmethod
    def of(cls, root: Path) -> StoreIdentity:
        """The identity of the directory at ``root`` (symlinks followed). Raises OSError."""
        info = os.stat(root)
        return cls(info.st_dev, info.st_ino)

    @classmethod
    def parse(cls, text: str | None) -> StoreIdentity | None:
        """``"<device>:<inode>"`` as :meth:`__str__` writes it; None for anything else."""
        device, sep, inode = (text or "").strip().partition(":")
        if not sep or not device.isdigit() or not inode.isdigit():
            return None
        return cls(int(device), int(inode))

    def __str__(self) -> str:
        return f"{self.device}:{self.inode}"


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    None when the process does not exist or the platform has no ``/proc`` (then liveness rests
    on the pid alone).
    """
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (OSError, ValueError):
        return None
    # the command name (field 2) may hold spaces and parentheses: count from the last ')'
    fields = data[data.rindex(b")") + 2 :].split()
    try:
        return int(fields[19])  # fields[0] is field 3 (state), so field 22 is fields[19]
    except (IndexError, ValueError):
        return None


def process_alive(pid: int | None, start_time: int | None = None) -> bool:
    """True when ``pid`` runs and, if ``start_time`` is given, is the process that started then.

    A pid that exists under another user counts as alive (we may not signal it, but it runs).
    Where the start time cannot be read (no ``/proc``), a running pid counts as alive: when in
    doubt, a process is treated as alive, since the callers only ever skip removals for it.
    """
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except (OverflowError, ValueError):  # not a pid this system can have
        return False
    if start_time is None:
        return True
    current = process_start_time(pid)
    return current is None or current == start_time
