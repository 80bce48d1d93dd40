"""Freshness per indexed root: when it was synced, what is pending, which git commit it reflects.

Where it lives: in the collection metadata of the root's domain (``adjust_meta``), under
``{"freshness": {tenant: {root: record}}}``. The record describes the index, so it lives with
the index: it is written under the same lock as the points (a watcher and a server in other
processes see it at once, the shared embedded store forwards it like every other write), it
disappears with the collection, and a Qdrant server keeps it next to the vectors it describes
(a JSON file in a data directory would survive a deleted store and lie about it).

A record holds ``synced_at`` (start of the last finished sync: everything on disk at that moment
was read), ``pending`` (changes a watcher saw and has not ingested, or sources an ingest
without ``--prune`` found gone and kept), ``commit`` and ``tree`` (the git HEAD and a
fingerprint of the files an ingest takes that differ from it, at the start of the sync), the
live ``watcher`` (pid and host) and the last ``error``. Whether the work tree
``moved`` is computed on read: the work tree fingerprinted against the recorded commit, as
the sync fingerprinted it (:func:`git_state`), so committing what was synced does not move it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import subprocess
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from server.retrieval import chunk_record
from server.retrieval.analysis import resolve_domain
from server.retrieval.filter_fields import PATH_PREFIXES_FIELD, path_forms
from server.retrieval.results import FreshnessStatus, RootFreshness
from server.retrieval.store import VectorStore
from server.settings import Domain, Settings

logger = logging.getLogger(__name__)

FRESHNESS_KEY = "freshness"
GIT_TIMEOUT_SECONDS = 10.0
GIT_CACHE_SECONDS = 2.0
"""How long a read reuses a root's probed git state: searches in a burst run git once."""


@dataclass(frozen=True)
class GitState:
    """A work tree's state: HEAD (None before the first commit) and a fingerprint of what it
    holds beyond a base commit (HEAD unless asked otherwise): the files an ingest would take
    whose content differs from the base's (tracked, staged or not, and untracked alike), each
    by its content (so a second edit of an already modified file changes it too)."""

    commit: str | None
    tree: str


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""git's empty tree: the base of a repository before its first commit."""


def _git(root: Path, *args: str) -> bytes | None:
    """stdout of ``git -C root args``; None when git is missing, fails or times out."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}  # status writes no index.lock
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _nested_files(folder: Path, domain: Domain, exclude: Collection[Path]) -> list[Path]:
    """The files a walk takes in an untracked folder git does not list file by file (a
    nested repository)."""
    from server.ingest.walker import discover  # ingest imports us

    return [f.path for f in discover([folder], domain, 2**62, exclude=exclude).files]


def _gitlinks(root: Path, toplevel: Path) -> list[Path]:
    """The submodules (index entries of mode 160000) under ``root``."""
    staged = _git(root, "ls-files", "-s", "-z", "--full-name", "--", ".") or b""
    links = []
    for entry in (e for e in staged.split(b"\0") if e.startswith(b"160000 ")):
        links.append(toplevel / os.fsdecode(entry.split(b"\t", 1)[1]))
    return links


HASHED_BYTES = 8 * 1024 * 1024
"""Files up to this size are fingerprinted by content (a rewrite with the same bytes, as
``git stash`` + ``git stash pop`` does, is no change); larger ones by size and mtime."""


def _stamp(path: Path) -> str | None:
    """A file's fingerprint: a hash of its content (size and mtime past :data:`HASHED_BYTES`),
    "-" when it is gone, None when it is empty (an empty file indexes as no file: the ingest
    skips it, no text)."""
    try:
        info = os.lstat(path)
        if info.st_size == 0:
            return None
        if info.st_size > HASHED_BYTES:
            return f"{info.st_size}:{info.st_mtime_ns}"
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "-"


def git_state(
    root: Path | str,
    domain: Domain | None = None,
    exclude: Collection[Path] = (),
    base: str | None = None,
) -> GitState | None:
    """The git state of the work tree holding ``root`` (files under ``root`` only), or None
    when ``root`` is not in a git work tree (or git is not installed, or ``base`` is not a
    commit of it).

    The fingerprint covers the files whose content differs from ``base`` (default HEAD):
    ``git diff --name-only base`` (work tree against the commit, renames as a deletion and an
    addition, mode changes ignored) and the untracked files (``git ls-files --others``, with
    ``.gitignore`` rules only, as the walk applies them; ``.git/info/exclude`` is git's own),
    each by content; in a nested repository or a submodule, every file the walk takes. With
    ``domain``, only what decides what an ingest of ``root`` takes counts: the files it would
    take (by the walk's own rules, :class:`EventFilter`, plus the domain's file types;
    ``exclude``: the store) and the ``.gitignore`` files; None: every tracked file and no
    untracked one. Committing or staging files changes HEAD but not the
    fingerprint against a fixed base: what the index holds did not change.
    """
    from server.ingest.walker import detect_format  # ingest imports us
    from server.ingest.watch_filter import GITIGNORE, EventFilter

    root = Path(root)
    top = _git(root, "rev-parse", "--show-toplevel")
    if top is None or not top.strip():
        return None
    toplevel = Path(os.fsdecode(top.strip()))
    head = _git(root, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    commit = head.decode().strip() if head else None
    against = base or commit or EMPTY_TREE
    changed = _git(
        root, "-c", "core.fileMode=false", "diff", "--name-only", "-z", "--no-renames",
        against, "--", ".",
    )  # fmt: skip
    if changed is None:
        return None
    names = [toplevel / os.fsdecode(n) for n in changed.split(b"\0") if n]
    if domain is not None:
        others = _git(
            root,
            "ls-files",
            "-z",
            "--others",
            "--full-name",
            "--exclude-per-directory=.gitignore",
            "--",
            ".",
        )
        if others is None:
            return None
        real_root = Path(os.path.realpath(root))
        walk = EventFilter(real_root, [Path(os.path.realpath(folder)) for folder in exclude])
        for name in (n for n in others.split(b"\0") if n):
            path = toplevel / os.fsdecode(name)
            if name.endswith(b"/"):  # a nested repository: git lists the folder only
                if walk.keeps(str(path)):
                    names.extend(_nested_files(path, domain, walk.excluded))
            else:
                names.append(path)
        # a submodule (a gitlink): git diffs its commit, not its files (an edit or a new file
        # in it moves nothing), so every file the walk takes in it counts, by content
        for sub in _gitlinks(root, toplevel):
            if walk.keeps(str(sub)) and not os.path.islink(sub) and os.path.isdir(sub):
                names = [n for n in names if n != sub]
                names.extend(_nested_files(sub, domain, walk.excluded))
        names = [
            n
            for n in names
            if walk.keeps(str(n))
            and not os.path.islink(n)  # the walk never follows a link
            and (n.name == GITIGNORE or detect_format(n, domain) is not None)
        ]
    digest = hashlib.sha256(b"content v2")
    for path in sorted(set(names)):
        stamp = _stamp(path)
        if stamp is not None:
            digest.update(os.fsencode(path) + b"\0" + stamp.encode() + b"\0")
    return GitState(commit, digest.hexdigest())


GIT_WAIT_SECONDS = 0.1
"""How long a read waits for a git probe it started before answering with the last state."""


@dataclass(frozen=True)
class GitProbe:
    """A probed git state (None: not a git work tree), when the probe started and how long it
    took."""

    state: GitState | None
    started: float  # time.monotonic()
    checked_at: str  # ISO-8601 UTC
    seconds: float = 0.0


GIT_PROBE_SHARE = 0.1
"""The most of the time a root's probes may take: one that took t seconds is repeated after
t / share at the soonest (listing the untracked files of a large work tree can take seconds)."""


_ProbeKey = tuple[str, Domain | None, tuple[Path, ...], str | None]
_cache: dict[_ProbeKey, GitProbe] = {}
_running: dict[_ProbeKey, threading.Event] = {}
_cache_lock = threading.Lock()


def cached_git_state(
    root: str, domain: Domain | None = None, exclude: Collection[Path] = (), base: str | None = None
) -> GitState | None:
    """:func:`git_state` of ``root`` as :func:`probed_git_state` reads it."""
    return probed_git_state(root, domain, exclude, base).state


def probed_git_state(
    root: str,
    domain: Domain | None = None,
    exclude: Collection[Path] = (),
    base: str | None = None,
    not_before: str | None = None,
) -> GitProbe:
    """``root``'s :func:`git_state` (for ``domain``, ``exclude``, ``base``), probed at most every
    :data:`GIT_CACHE_SECONDS`, or every probe's time over :data:`GIT_PROBE_SHARE` when longer.

    A read past that starts one probe (on a thread; concurrent reads share it) and waits for
    it up to :data:`GIT_WAIT_SECONDS`: git takes milliseconds in a small work tree,
    so the answer is current, and seconds in a large one, where a search answers with the last
    state instead of waiting (its ``checked_at`` says how old it is) and a later read gets
    the new one. A root never probed waits for its first probe. A probe that started before
    ``not_before`` (the sync it is compared with) is no answer: it is probed again.
    """
    key = (root, domain, tuple(exclude), base)
    with _cache_lock:
        last = _cache.get(key)
        if last is not None and (not_before is None or last.checked_at >= not_before):
            window = max(GIT_CACHE_SECONDS, last.seconds / GIT_PROBE_SHARE)
            if time.monotonic() - last.started < window:
                return last
        done = _running.get(key)
        if done is None:
            done = _running[key] = threading.Event()
            threading.Thread(target=_probe, args=(key, done), name="git-state", daemon=True).start()
    done.wait(None if last is None else GIT_WAIT_SECONDS)
    with _cache_lock:
        return _cache.get(key) or last or GitProbe(None, time.monotonic(), now_iso())


def _probe(key: _ProbeKey, done: threading.Event) -> None:
    """Probe ``key``'s root and remember its state; ``done`` is set when it is remembered."""
    root, domain, exclude, base = key
    try:
        started, checked_at = time.monotonic(), now_iso()
        state = git_state(root, domain, exclude, base) if os.path.isdir(root) else None
        with _cache_lock:
            _cache[key] = GitProbe(state, started, checked_at, time.monotonic() - started)
    finally:
        with _cache_lock:
            _running.pop(key, None)
        done.set()


def clear_git_cache() -> None:
    """Forget every probed git state (the next read probes again)."""
    with _cache_lock:
        _cache.clear()


def now_iso() -> str:
    """The current UTC time as freshness records store it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def store_folders(settings: Settings) -> list[Path]:
    """The embedded store's folder (none with a Qdrant server): it may lie inside an indexed
    root, and its files are never sources."""
    return [] if settings.qdrant_url else [settings.store_path]


# -- writing ---------------------------------------------------------------------------------------


def update_root(
    store: VectorStore, collection: str, tenant: str, root: Path | str, fields: Mapping[str, Any]
) -> None:
    """Set ``fields`` of one root's record (the collection must exist; atomic per store)."""
    key = Path(root).as_posix()
    store.adjust_meta(collection, {}, {FRESHNESS_KEY: {tenant: {key: dict(fields)}}})


def forget_emptied_roots(
    store: VectorStore, collection: str, tenant: str, removed: Sequence[str] | None
) -> list[str]:
    """Drop the records of the tenant's roots that held some of the ``removed`` sources (None:
    any, as after deleting all of them) and now hold no chunk (a deleted folder was still named
    in every search's freshness note); returns them. A root that never held the removed
    sources keeps its record, empty or not."""
    if (removed is not None and not removed) or not store.has_collection(collection):
        return []
    records = store.read_meta(collection).get(FRESHNESS_KEY, {})
    mine = records.get(tenant, {}) if isinstance(records, Mapping) else {}
    emptied = [
        root
        for root, record in (mine.items() if isinstance(mine, Mapping) else [])
        if isinstance(record, Mapping)
        and (
            removed is None
            or any(s == root or s.startswith(root.rstrip("/") + "/") for s in removed)
        )
        and store.count(collection, tenant, {PATH_PREFIXES_FIELD: path_forms(root)}) == 0
    ]
    if emptied:  # a record that is not a mapping is no record (root_freshness)
        store.adjust_meta(collection, {}, {FRESHNESS_KEY: {tenant: dict.fromkeys(emptied)}})
    return emptied


def sync_fields(started_at: str, git: GitState | None, pending: int = 0) -> dict[str, Any]:
    """The fields a finished sync sets: it started at ``started_at`` with ``git`` the state then."""
    return {
        "synced_at": started_at,
        "pending": pending,
        "commit": git.commit if git else None,
        "tree": git.tree if git else None,
        "git": git is not None,
        "error": None,
    }


def watcher_fields(watching: bool) -> dict[str, Any]:
    """The fields naming this process as the root's watcher (or clearing it)."""
    if not watching:
        return {"watcher": None}
    return {"watcher": {"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()}}


def ensure_collection(
    store: VectorStore, settings: Settings, domain: Domain, dimension: int
) -> str:
    """The domain's collection, created when missing (a root with nothing to index yet still
    gets its record); returns its name."""
    name, domain_settings = resolve_domain(settings, domain)
    store.ensure_collection(
        domain_settings.collection,
        dimension,
        chunk_record.payload_indexes(name),
        part_vectors=domain_settings.part_sentences > 0,
    )
    return domain_settings.collection


# -- reading ---------------------------------------------------------------------------------------


def _watcher_alive(watcher: Any) -> bool:
    if not isinstance(watcher, Mapping):
        return False
    pid, host = watcher.get("pid"), watcher.get("host")
    if host != socket.gethostname():
        return bool(pid)  # another machine's process cannot be probed: trust its record
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _status(
    synced: bool, pending: int, moved: bool | None, watched: bool, error: Any
) -> FreshnessStatus:
    if not synced:
        return "never synced"
    if pending > 0 or moved or error:
        return "stale"
    if watched or moved is False:
        return "fresh"
    return "unknown"


def describe(
    root: str, domain: Domain, record: Mapping[str, Any], exclude: Collection[Path] = ()
) -> RootFreshness:
    """One stored record as the public model, ``moved`` probed now (cached briefly; files
    under ``exclude`` are not the root's: see :func:`git_state`)."""
    synced_at = record.get("synced_at")
    pending = int(record.get("pending") or 0)
    watched = _watcher_alive(record.get("watcher"))
    commit = record.get("commit")
    moved: bool | None = None
    checked_at: str | None = None
    if record.get("git") and synced_at:
        # against the synced commit: committing what was synced moves HEAD, not the content
        base = commit if isinstance(commit, str) else EMPTY_TREE
        probe = probed_git_state(root, domain, exclude, base, not_before=str(synced_at))
        current, checked_at = probe.state, probe.checked_at
        if checked_at >= str(synced_at):  # a probe older than the sync cannot say
            moved = current is None or current.tree != record.get("tree")
    error = record.get("error")
    if synced_at and not os.path.isdir(root) and not os.path.isfile(root):
        error = error or "the root no longer exists"
    status = _status(bool(synced_at), pending, moved, watched, error)
    return RootFreshness(
        root=root,
        domain=domain,
        status=status,
        synced_at=synced_at if isinstance(synced_at, str) else None,
        pending=pending,
        watched=watched,
        commit=commit if isinstance(commit, str) else None,
        moved=moved,
        checked_at=checked_at,
        error=str(error) if error else None,
    )


def root_freshness(
    store: VectorStore, settings: Settings, tenant: str, domain: Domain
) -> list[RootFreshness]:
    """The tenant's indexed roots of one domain with their freshness, sorted by root."""
    collection = settings.domains[domain].collection
    if not store.has_collection(collection):
        return []
    meta = store.read_meta(collection)
    records = meta.get(FRESHNESS_KEY, {})
    mine = records.get(tenant, {}) if isinstance(records, Mapping) else {}
    if not isinstance(mine, Mapping):
        return []
    out: list[RootFreshness] = []
    exclude = store_folders(settings)
    for root in sorted(mine):
        record = mine[root]
        if isinstance(record, Mapping):
            with contextlib.suppress(ValueError, TypeError):  # a damaged record is left out
                out.append(describe(root, domain, record, exclude))
    return out


def render_freshness(root: RootFreshness) -> str:
    """One line: ``root (domain): status, synced .., N pending, commit .. (moved)``; an
    ``unknown`` status says why (the folder is neither watched nor in a git work tree)."""
    parts: list[str] = [root.status]
    if root.status == "unknown":
        parts = ["unknown (not watched, not in a git work tree: edits since the sync are not seen)"]
    if root.synced_at:
        parts.append(f"synced {root.synced_at}")
    if root.pending:
        parts.append(f"{root.pending} change(s) pending")
    if root.commit:
        parts.append(f"commit {root.commit[:12]}")
    if root.moved:
        parts.append("work tree moved since")
    if root.watched:
        parts.append("watched")
    if root.error:
        parts.append(f"last error: {root.error}")
    return f"index of {root.root} ({root.domain.value}): {', '.join(parts)}"
