"""The walk: every file-system error is a skip reason, --prune deletes only what the walk
proves gone, links never double-count and are each reported, nothing blocks.

Unreadable folders and files are exercised for real: the walk runs as a user the permissions
apply to (see walk_support.py), never skipped where that works.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from walk_support import (
    as_unprivileged,
    cli_as_unprivileged,
    cli_env,
    open_tempdir,
    open_to_all,
    permissions_bite,
)

from server.cli import main
from server.ingest.manifest import load_manifest
from server.ingest.source_io import UnreadableSource, read_source
from server.ingest.walker import Discovery, _list, discover
from server.retrieval.edge_store import EdgeStore
from server.settings import Domain

FIELD_WALK = Path(__file__).resolve().parents[2] / "datasets" / "field" / "walk"

LIMIT = 1_000_000
OK, NO_ACCESS, SEARCH_ONLY, LIST_ONLY = 0o755, 0o000, 0o111, 0o444
"""Folder modes: listable and searchable; neither; entries reachable by name but not listable;
listable but no entry can be stat'ed or opened."""

Rel = tuple[str, ...]
"""A path inside the generated tree, as its components (``()`` is the root)."""


def walk(*paths: Path, domain: Domain = Domain.DOCS) -> Discovery:
    return discover(list(paths), domain, LIMIT)


def needs_permissions() -> None:
    if not permissions_bite():
        pytest.skip("file permissions are not enforced for any user this test can run as")


# -- random trees ------------------------------------------------------------------------------


@dataclass
class Tree:
    """A generated folder tree: what to create, and which stored sources were deleted since."""

    folders: list[Rel]
    files: list[Rel]
    hardlinks: list[tuple[Rel, int]]
    fifos: list[Rel]
    links: list[tuple[Rel, tuple[str, int]]]
    """(path, (target kind, index)): file, folder, link (a chain), outside-file, outside-folder,
    missing."""
    folder_modes: dict[Rel, int]
    locked_files: set[int]
    fakes: list[Rel] = field(default_factory=list)

    def mode(self, folder: Rel) -> int:
        return self.folder_modes.get(folder, OK)

    def searchable(self, folder: Rel) -> bool:
        """Its entries can be stat'ed and opened by name (x on it and every folder above)."""
        return all(self.mode(folder[:i]) & 0o100 for i in range(len(folder) + 1))

    def listable(self, folder: Rel) -> bool:
        """The walk lists it: every folder above is walkable (r and x), it has r."""
        above = all(self.mode(folder[:i]) == OK for i in range(len(folder)))
        return above and bool(self.mode(folder) & 0o400)

    def walkable(self, folder: Rel) -> bool:
        return self.listable(folder) and self.mode(folder) == OK

    def reachable(self, path: Rel) -> bool:
        """lstat(path) works: x on every folder above it."""
        return self.searchable(path[:-1])


NAMES = ("a", "b", "c")


@st.composite
def trees(draw: st.DrawFn) -> Tree:
    nested = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map(tuple)
    chains = draw(st.lists(nested, max_size=5))
    folders = sorted({chain[:i] for chain in chains for i in range(len(chain) + 1)} | {()})

    def entries(prefix: str, most: int) -> list[Rel]:
        picks = draw(
            st.lists(
                st.tuples(st.sampled_from(folders), st.integers(0, 2)), max_size=most, unique=True
            )
        )
        return [(*folder, f"{prefix}{n}.md") for folder, n in picks]

    files = entries("f", 6)
    fifos = entries("p", 2)
    link_paths = entries("l", 5)
    kinds = ["folder", "link", "outside-file", "outside-folder", "missing"] + ["file"] * bool(files)
    sizes = {"file": len(files), "folder": len(folders), "link": len(link_paths)}
    links = []
    for path in link_paths:
        kind = draw(st.sampled_from(kinds))
        links.append((path, (kind, draw(st.integers(0, max(sizes.get(kind, 1) - 1, 0))))))
    hardlinks = (
        [(p, draw(st.integers(0, len(files) - 1))) for p in entries("h", 2)] if files else []
    )
    modes = st.sampled_from([NO_ACCESS, SEARCH_ONLY, LIST_ONLY])
    folder_modes = draw(st.dictionaries(st.sampled_from(folders), modes, max_size=3))
    locked = draw(st.sets(st.integers(0, len(files) - 1), max_size=2)) if files else set()
    tails = st.sampled_from([("gone.md",), ("a", "gone.md"), ("f0.md", "gone.md")])
    fakes = draw(st.lists(st.tuples(st.sampled_from(folders), tails).map(lambda t: t[0] + t[1])))
    return Tree(folders, files, hardlinks, fifos, links, folder_modes, locked, fakes)


def build(tree: Tree, base: Path) -> tuple[Path, Path]:
    """Create the tree under ``base/tree`` (and ``base/outside``); modes applied last."""
    root, outside = base / "tree", base / "outside"
    (outside / "od").mkdir(parents=True)
    (outside / "o.md").write_text("# Outside\n\nnot ingested\n")
    for folder in tree.folders:
        root.joinpath(*folder).mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(tree.files):
        root.joinpath(*path).write_text(f"# File {i}\n\ncontent {i}\n")
    for path, i in tree.hardlinks:
        os.link(root.joinpath(*tree.files[i]), root.joinpath(*path))
    for path in tree.fifos:
        os.mkfifo(root.joinpath(*path))
    for path, (kind, i) in tree.links:
        target = {
            "file": lambda i: root.joinpath(*tree.files[i]),
            "folder": lambda i: root.joinpath(*tree.folders[i]),
            "link": lambda i: root.joinpath(*tree.links[i][0]),
            "outside-file": lambda i: outside / "o.md",
            "outside-folder": lambda i: outside / "od",
            "missing": lambda i: root / "missing.md",
        }[kind](i)
        where = root.joinpath(*path)
        os.symlink(os.path.relpath(target, where.parent), where)
    for i in tree.locked_files:
        root.joinpath(*tree.files[i]).chmod(0)
    for folder, mode in sorted(tree.folder_modes.items(), key=lambda item: -len(item[0])):
        root.joinpath(*folder).chmod(mode)
    return root, outside


def link_category(tree: Tree, index: int) -> str:
    """What the reason of link ``index`` must say, worked out from the tree alone."""
    home = tree.links[index][0][:-1]
    visited: set[int] = set()
    while True:
        path, (kind, i) = tree.links[index]
        if not tree.reachable(path):
            return "cannot be followed"
        if index in visited:
            return "loop"
        visited.add(index)
        if kind != "link":
            break
        index = i
    if kind == "missing":
        return "broken" if tree.searchable(()) else "cannot be followed"
    if kind.startswith("outside"):
        return "outside"
    if kind == "file":
        if not tree.reachable(tree.files[i]):
            return "cannot be followed"
        copies = [tree.files[i], *(p for p, j in tree.hardlinks if j == i)]
        return "ingested" if any(tree.walkable(c[:-1]) for c in copies) else "could not be listed"
    folder = tree.folders[i]
    if folder == home[: len(folder)]:
        return "loop"  # its own folder or one above it
    if folder and not tree.reachable(folder):
        return "cannot be followed"
    return "walked under its own path" if tree.listable(folder) else "could not be listed"


def collect(root: Path) -> tuple[Discovery, dict[str, str]]:
    """discover() as the unprivileged user, then each found file read as the runner reads it."""
    found = walk(root)
    reads: dict[str, str] = {}
    for file in found.files:
        try:
            reads[file.source] = read_source(file.path, LIMIT).decode()
        except UnreadableSource as exc:
            reads[file.source] = f"skip: {exc}"
    return found, reads


@pytest.mark.slow
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=trees())
def test_random_trees_every_error_and_link_reported_and_prune_only_proven_gone(tree: Tree) -> None:
    needs_permissions()
    with open_tempdir() as base:
        root, _ = build(tree, base)
        found, reads = as_unprivileged(lambda: collect(root))
        check_invariants(tree, root, found, reads)


def check_invariants(tree: Tree, root: Path, found: Discovery, reads: dict[str, str]) -> None:
    at = {p: root.joinpath(*p).as_posix() for p in [*tree.folders, *tree.files, *tree.fifos]}
    at.update({p: root.joinpath(*p).as_posix() for p, _ in [*tree.hardlinks, *tree.links]})
    by_kind: dict[str, dict[str, str]] = {"error": {}, "link": {}, "file": {}}
    for skip in found.skipped:
        assert skip.path not in by_kind[skip.kind], f"reported twice: {skip}"
        assert skip.reason.strip() and "\n" not in skip.reason and "Traceback" not in skip.reason
        by_kind[skip.kind][skip.path] = skip.reason

    # 1. Every walk error is a skip reason: folders that cannot be listed (or opened), and files
    # whose folder lets them be listed but not stat'ed. Reads fail exactly for locked files.
    unlisted = {
        at[f] for f in tree.folders if (not f or tree.listable(f[:-1])) and not tree.listable(f)
    }
    copies = [*tree.files, *(p for p, _ in tree.hardlinks)]
    unstatable = {at[p] for p in copies if tree.listable(p[:-1]) and not tree.walkable(p[:-1])}
    assert set(by_kind["error"]) == unlisted | unstatable
    assert {p.as_posix() for p in found.unlisted} == unlisted
    fifos = {at[p] for p in tree.fifos if tree.listable(p[:-1])}
    assert set(by_kind["file"]) == fifos  # typed from the listing, never opened
    locked = {at[tree.files[i]] for i in tree.locked_files}
    locked |= {at[p] for p, i in tree.hardlinks if i in tree.locked_files}
    for source, text in reads.items():
        expected = "skip: cannot read: permission denied" if source in locked else "# File "
        assert text.startswith(expected), (source, text)

    # 3. Each file once (real path, inode), every link reported with its reason.
    sources = [f.source for f in found.files]
    assert len(sources) == len(set(sources))
    inodes = [os.stat(f.path) for f in found.files]
    assert len({(s.st_dev, s.st_ino) for s in inodes}) == len(inodes)
    groups: dict[int, list[Rel]] = {i: [p] for i, p in enumerate(tree.files)}
    for path, i in tree.hardlinks:
        groups[i].append(path)
    taken: set[str] = set()
    duplicates: set[str] = set()
    for members in groups.values():
        walked = {at[m] for m in members if tree.walkable(m[:-1])}
        assert len(walked & set(sources)) == (1 if walked else 0), members
        taken |= walked & set(sources)
        duplicates |= walked - set(sources)
    assert set(sources) == taken
    for duplicate in duplicates:
        assert by_kind["link"][duplicate].startswith("hard link to ")
    seen_links = {at[p]: i for i, (p, _) in enumerate(tree.links) if tree.listable(p[:-1])}
    assert set(by_kind["link"]) == set(seen_links) | duplicates
    for path, index in seen_links.items():
        category = link_category(tree, index)
        assert category in by_kind["link"][path], (path, tree.links[index], category)

    # 2. Prune decision: gone only where every folder on the path was listed.
    stored = [*(at[p] for p in copies), *(root.joinpath(*p).as_posix() for p in tree.fakes)]
    gone, kept = found.gone(stored)
    expected_gone: set[str] = set()
    expected_kept: set[str] = set()
    for rel in [*copies, *tree.fakes]:
        source = root.joinpath(*rel).as_posix()
        deepest = max((f for f in tree.folders if rel[: len(f)] == f), key=len)
        if source in sources or source in duplicates:
            continue  # a duplicate is on disk: never "gone" (found.linked names its twin)
        if rel in copies and tree.listable(deepest) and not tree.walkable(deepest):
            continue  # found in the listing but not stat'ed: present, never pruned
        (expected_gone if tree.listable(deepest) else expected_kept).add(source)
    assert set(gone) == expected_gone
    assert set(kept) == expected_kept
    # hard-link duplicates, and symlinks to a file taken under its own path
    assert duplicates <= set(found.linked) <= duplicates | set(seen_links)
    for source in gone:
        assert not os.path.lexists(source)


@st.composite
def linked_folders(draw: st.DrawFn) -> tuple[list[Rel], list[tuple[Rel, int]], set[Rel], set[str]]:
    """Files in folders a and b, hard links between them, a stored subset of all the names
    (an earlier run's sources), and the folders this run walks (one or both)."""
    spots = st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["x.md", "y.md", "z.md"]))
    files = draw(st.lists(spots, min_size=1, max_size=3, unique=True))
    free = [p for p in (("a", n) for n in ("x.md", "y.md", "z.md")) if p not in files]
    free += [p for p in (("b", n) for n in ("x.md", "y.md", "z.md")) if p not in files]
    links = draw(st.lists(st.tuples(st.sampled_from(free), st.integers(0, len(files) - 1)),
                          max_size=3, unique_by=lambda t: t[0]))  # fmt: skip
    names = [*files, *(p for p, _ in links)]
    stored = set(draw(st.lists(st.sampled_from(names), max_size=len(names))))
    roots = draw(st.sets(st.sampled_from(["a", "b"]), min_size=1))
    return files, links, stored, roots


@settings(max_examples=150, deadline=None)
@given(case=linked_folders())
def test_one_file_is_stored_under_one_name_and_no_name_on_disk_is_gone(
    case: tuple[list[Rel], list[tuple[Rel, int]], set[Rel], set[str]],
) -> None:
    """Whatever names a file has, which of them earlier runs stored and which folders this
    run walks: a file is taken only under the first of its stored names (a hard link made
    later, or two stored files made one by a deduplicating tool, was stored as a second copy),
    and no stored name still on disk is "gone" (a duplicate name read "no longer on disk" and
    --prune deleted it)."""
    files, links, stored_rel, roots = case
    with open_tempdir() as base:
        for folder in ("a", "b"):
            (base / folder).mkdir()
        for i, rel in enumerate(files):
            base.joinpath(*rel).write_text(f"# File {i}\n\ncontent {i}\n")
        for rel, i in links:
            os.link(base.joinpath(*files[i]), base.joinpath(*rel))
        stored = {base.joinpath(*rel).as_posix() for rel in stored_rel}
        found = discover([base / r for r in sorted(roots)], Domain.DOCS, LIMIT, prefer=stored)

        def inode(path: str) -> tuple[int, int]:
            info = os.stat(path)
            return info.st_dev, info.st_ino

        taken = [f.source for f in found.files]
        assert len({inode(t) for t in taken}) == len(taken)
        for source in taken:  # the file's first stored name keeps it, walked or not
            twins = {s for s in stored if s != source and inode(s) == inode(source)}
            assert not twins or (source in stored and source < min(twins)), (source, twins)
        gone, kept = found.gone(stored)
        assert not kept and not [g for g in gone if os.path.lexists(g)]
        for link, twin in found.linked.items():
            assert inode(link) == inode(twin) and link != twin
            assert any(s.path == link and s.kind == "link" for s in found.skipped)


# -- the field cases and single faults -------------------------------------------------------


def make_symlink_case(notes: Path) -> None:
    """field-cases/symlinks/setup.sh: two notes, a self loop, a parent loop, a link out of the
    tree, a file link."""
    shutil.copytree(FIELD_WALK / "notes", notes)  # backup.md, sub/deep.md
    (notes / "loop").symlink_to(".")
    (notes / "sub" / "up").symlink_to("..")
    (notes / "alias.md").symlink_to("backup.md")
    (notes / "outside").symlink_to("/etc")


def test_symlink_field_case_each_file_once_every_link_reported(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    make_symlink_case(notes)
    found = walk(notes)
    real = notes.resolve()
    assert sorted(f.rel_path for f in found.files) == ["backup.md", "sub/deep.md"]
    assert {s.path: (s.kind, s.reason) for s in found.skipped} == {
        f"{real}/alias.md": ("link", "symlink to backup.md, ingested under its own path"),
        f"{real}/loop": ("link", "symlink loop: points to its own folder"),
        f"{real}/sub/up": ("link", "symlink loop: points to a folder above it"),
        f"{real}/outside": (
            "link",
            "symlink to a folder outside the ingested folders, not followed: /etc",
        ),
    }


def test_links_to_folders_cycles_broken_and_outside_files(tmp_path: Path) -> None:
    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    (root / "docs" / "deep").mkdir(parents=True)
    elsewhere.mkdir()
    (root / "docs" / "deep" / "a.md").write_text("# A\n\nalpha\n")
    (elsewhere / "x.md").write_text("# X\n\noutside\n")
    (root / "mirror").symlink_to("docs")
    (root / "x.md").symlink_to(elsewhere / "x.md")
    (root / "ping.md").symlink_to("pong.md")
    (root / "pong.md").symlink_to("ping.md")
    (root / "gone.md").symlink_to("nowhere.md")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "h.md").write_text("# H\n\nhidden\n")
    (root / "h.md").symlink_to(".hidden/h.md")
    found = walk(root)
    assert [f.rel_path for f in found.files] == ["docs/deep/a.md"]
    reasons = {Path(s.path).name: s.reason for s in found.skipped if s.kind == "link"}
    assert reasons == {
        "mirror": "symlink to folder docs, walked under its own path",
        "x.md": f"symlink to a file outside the ingested folders, not followed: {elsewhere}/x.md",
        "ping.md": "symlink loop: its chain of links never ends",
        "pong.md": "symlink loop: its chain of links never ends",
        "gone.md": "broken symlink: nowhere.md does not exist",
        "h.md": "symlink to .hidden/h.md, which is hidden or ignored",
    }
    # The link's target ingested explicitly as a second root: once, and the link says so.
    both = walk(root, elsewhere)
    assert sorted(f.rel_path for f in both.files) == ["docs/deep/a.md", "x.md"]
    assert {s.reason for s in both.skipped if s.path.endswith("/x.md")} == {
        f"symlink to {elsewhere}/x.md, ingested under its own path"
    }


def test_hard_links_and_overlapping_roots_count_once(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "a.md").write_text("# A\n\nalpha\n")
    os.link(root / "a.md", root / "sub" / "b.md")
    found = walk(root, root / "sub", root / "a.md")
    assert [f.source for f in found.files] == [(root / "a.md").as_posix()]
    assert [(s.path, s.reason) for s in found.skipped] == [
        (
            (root / "sub" / "b.md").as_posix(),
            "hard link to a.md (same file), ingested under that path",
        )
    ]


def test_a_new_hard_link_never_moves_a_stored_file(tmp_path: Path) -> None:
    """The stored path wins over a hard link that sorts first: re-ingesting with --prune must
    not re-embed the file under the new name and delete the stored one."""
    kb = tmp_path / "kb"
    (kb / "z").mkdir(parents=True)
    (kb / "0").mkdir()
    (kb / "z" / "orig.md").write_text("# Orig\n\ntext\n")
    os.link(kb / "z" / "orig.md", kb / "0" / "link.md")
    stored = (kb / "z" / "orig.md").as_posix()
    plain = discover([kb], Domain.DOCS, 10**6)
    assert [f.source for f in plain.files] == [(kb / "0" / "link.md").as_posix()]
    found = discover([kb], Domain.DOCS, 10**6, prefer={stored})
    assert [f.source for f in found.files] == [stored]
    assert [(s.path, s.reason) for s in found.skipped] == [
        ((kb / "0" / "link.md").as_posix(), "hard link to z/orig.md (same file), ingested there")
    ]
    assert found.gone([stored]) == ([], [])


def test_fifo_socket_and_device_are_never_opened() -> None:
    with open_tempdir() as base, socket.socket(socket.AF_UNIX) as server:
        os.mkfifo(base / "pipe.md")
        server.bind(str(base / "sock.md"))
        (base / "null.md").symlink_to("/dev/null")
        (base / "note.md").write_text("# Note\n\ntext\n")
        found = as_unprivileged(lambda: walk(base, base / "pipe.md"), drop=False)
    assert [f.rel_path for f in found.files] == ["note.md"]
    assert [(s.path, s.reason) for s in found.skipped] == [
        (f"{base}/pipe.md", "not a regular file (FIFO)"),
        (f"{base}/sock.md", "not a regular file (socket)"),
        (f"{base}/pipe.md", "not a regular file (FIFO)"),  # named explicitly: still not opened
        (f"{base}/null.md", "symlink to a character device, not followed"),
    ]


def test_read_source_refuses_what_changed_since_the_listing(tmp_path: Path) -> None:
    for name in ("fifo.md", "link.md", "folder.md", "vanished.md", "grown.md"):
        (tmp_path / name).write_text("# Note\n\ntext\n")
    found = walk(tmp_path)
    assert len(found.files) == 5
    (tmp_path / "fifo.md").unlink()
    os.mkfifo(tmp_path / "fifo.md")
    (tmp_path / "link.md").unlink()
    (tmp_path / "link.md").symlink_to("grown.md")
    (tmp_path / "folder.md").unlink()
    (tmp_path / "folder.md").mkdir()
    (tmp_path / "vanished.md").unlink()
    (tmp_path / "grown.md").write_text("x" * 100)

    def read_all() -> dict[str, tuple[str, str]]:
        reasons = {}
        for file in found.files:
            try:
                read_source(file.path, 50)
            except UnreadableSource as exc:
                reasons[file.path.name] = (exc.kind, str(exc))
        return reasons

    assert as_unprivileged(read_all, drop=False) == {
        "fifo.md": ("error", "replaced by a FIFO after it was listed"),
        "link.md": ("error", "replaced by a symlink after it was listed"),
        "folder.md": ("error", "replaced by a folder after it was listed"),
        "vanished.md": ("error", "vanished after it was listed"),
        "grown.md": ("file", "too large (100 B > 50 B limit)"),
    }


def test_folder_replaced_after_its_parent_was_listed_is_not_walked(tmp_path: Path) -> None:
    (tmp_path / "kept").mkdir()
    (tmp_path / "other").mkdir()
    other = os.stat(tmp_path / "other")
    assert _list(tmp_path / "kept", (other.st_dev, other.st_ino)) == (
        "cannot list folder: replaced by another folder after it was listed"
    )
    (tmp_path / "kept").rmdir()
    (tmp_path / "kept").symlink_to("other")
    assert _list(tmp_path / "kept", None) == (
        "cannot list folder: replaced by a symlink after it was listed"
    )


def test_unreadable_folder_and_gitignore_are_reported_and_protect_their_sources() -> None:
    needs_permissions()
    with open_tempdir() as base:
        root = base / "handbook"
        (root / "private").mkdir(parents=True)
        (root / "repo" / "build").mkdir(parents=True)
        (root / "expenses.md").write_text("# Expenses\n\nReceipts within 14 days.\n")
        (root / "salaries.md").write_text("# Salaries\n\nBands reviewed in April.\n")
        (root / "private" / "minutes.md").write_text("# Minutes\n\nLease approved.\n")
        (root / "repo" / ".gitignore").write_text("build/\n!\n")
        (root / "repo" / "build" / "out.md").write_text("# Out\n\ngenerated\n")
        (root / "repo" / "readme.md").write_text("# Readme\n\nhello\n")
        first = walk(root)
        assert [s.reason for s in first.skipped] == ["invalid pattern '!' on line 2 not applied"]
        assert sorted(f.rel_path for f in first.files) == [
            "expenses.md", "private/minutes.md", "repo/readme.md", "salaries.md"
        ]  # fmt: skip
        stored = [f.source for f in first.files] + [f"{root}/repo/build/out.md", f"{root}/old.md"]
        (root / "private").chmod(0)
        (root / "salaries.md").chmod(0)
        (root / "repo" / ".gitignore").chmod(0)
        found, reads = as_unprivileged(lambda: collect(root))
    assert {(Path(s.path).name, s.kind, s.reason) for s in found.skipped} == {
        ("private", "error", "cannot list folder: permission denied"),
        ("repo", "error", "not walked: its .gitignore cannot be read (permission denied)"),
    }
    assert reads[f"{root}/salaries.md"] == "skip: cannot read: permission denied"
    gone, kept = found.gone(stored)
    assert gone == [f"{root}/old.md"]
    assert kept == [
        f"{root}/private/minutes.md",
        f"{root}/repo/build/out.md",
        f"{root}/repo/readme.md",
    ]


def test_undecodable_names_and_missing_roots_are_skips_not_tracebacks(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9.md"
    with open(raw, "wb") as handle:
        handle.write(b"# Cafe\n\nlatin-1 name\n")
    (tmp_path / "ok.md").write_text("# Ok\n\nfine\n")
    (tmp_path / "dangling").symlink_to("nothing")
    found = walk(tmp_path, tmp_path / "missing", tmp_path / "dangling")
    assert [f.rel_path for f in found.files] == ["ok.md"]
    skips = [(s.path, s.reason) for s in found.skipped]
    assert (f"{tmp_path}/caf\\xe9.md", "name is not valid UTF-8 (rename it to ingest it)") in skips
    assert (f"{tmp_path}/missing", "no such file or directory") in skips
    assert (f"{tmp_path}/dangling", "broken symlink") in skips
    for path, reason in skips:
        (path + reason).encode("utf-8")  # printable and JSON-serialisable


# -- end to end: the CLI -------------------------------------------------------------------------


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *argv],
        env=cli_env(), capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_cli_prune_never_deletes_under_an_unreadable_folder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """field-cases/unreadable-folder: ingest while readable, lock a folder and a file, delete
    another file elsewhere, ingest again with --prune (dry run first, as the same user).

    The first run is in this process: it also imports every module the later runs need (a
    forked unprivileged child cannot read the standard library under /root on the dev box)."""
    needs_permissions()
    with open_tempdir() as base:
        handbook, store = base / "handbook", base / "store"
        shutil.copytree(FIELD_WALK / "handbook", handbook)
        notes = sorted(p.relative_to(handbook).as_posix() for p in handbook.rglob("*.md"))
        assert notes == [
            "expenses.md", "private/minutes.md", "retired.md", "salaries.md", "travel.md"
        ]  # fmt: skip
        common = ["--domain", "docs", "--tenant", "acme", "--store", str(store), "--no-progress"]
        assert main(["ingest", str(handbook), *common]) == 0
        assert "5 added" in capsys.readouterr().out
        open_to_all(store)
        (handbook / "retired.md").unlink()  # really deleted: must still be pruned
        (handbook / "private").chmod(0)
        (handbook / "salaries.md").chmod(0)

        runs = {}
        for name, extra in (("dry", ["--dry-run", "--json"]), ("real", ["--json"]), ("text", [])):
            code, out, err = cli_as_unprivileged(["ingest", str(handbook), *common, "--prune",
                                                  *extra], home=base)  # fmt: skip
            # exit 1: the run completed but some files could not be read
            assert code == 1 and "Traceback" not in err, err
            runs[name] = out
        dry, real = json.loads(runs["dry"]), json.loads(runs["real"])
        for report in (dry, real):
            assert report["skipped"] == [
                {"path": f"{handbook}/private", "kind": "error",
                 "reason": "cannot list folder: permission denied"},
                {"path": f"{handbook}/salaries.md", "kind": "error",
                 "reason": "cannot read: permission denied"},
            ]  # fmt: skip
            assert report["deleted"] == [f"{handbook}/retired.md"]
            assert report["kept"] == [f"{handbook}/private/minutes.md"]
            assert report["unchanged"] == 2 and not report["added"]
        assert dry["dry_run"] and not real["dry_run"]
        text = runs["text"]
        assert "0 deleted, 2 skipped (errors: 2)" in text
        assert f"skipped: {handbook}/private: cannot list folder: permission denied" in text
        assert f"    kept: {handbook}/private/minutes.md" in text

        edge = EdgeStore(store)
        try:
            sources = set(load_manifest(edge, "docs", "acme"))
        finally:
            edge.close()
    assert sources == {f"{handbook}/{rel}" for rel in notes if rel != "retired.md"}


@pytest.mark.slow
def test_cli_symlink_field_case_counts_each_file_once_and_reports_every_link(
    tmp_path: Path,
) -> None:
    notes, store = tmp_path / "notes", tmp_path / "store"
    make_symlink_case(notes)
    real = notes.resolve()
    common = ["--domain", "docs", "--tenant", "acme", "--store", str(store), "--no-progress"]
    first = _cli("ingest", str(notes), *common)
    assert first.returncode == 0, first.stderr
    expected = {
        "alias.md": "symlink to backup.md, ingested under its own path",
        "loop": "symlink loop: points to its own folder",
        "outside": "symlink to a folder outside the ingested folders, not followed: /etc",
        "sub/up": "symlink loop: points to a folder above it",
    }
    assert "2 added, 0 updated, 0 unchanged, 0 deleted, 4 skipped (links: 4)" in first.stdout
    for rel, reason in expected.items():
        assert f"  skipped: {real}/{rel}: {reason}\n" in first.stdout
    again = _cli("ingest", str(notes), *common, "--json", "--prune")
    report = json.loads(again.stdout)
    assert (report["unchanged"], report["added"], report["deleted"]) == (2, [], [])
    assert {s["path"]: (s["kind"], s["reason"]) for s in report["skipped"]} == {
        f"{real}/{rel}": ("link", reason) for rel, reason in expected.items()
    }


def test_a_path_through_a_folder_that_cannot_be_entered_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A path or store under a folder this user cannot enter raised PermissionError tracebacks
    from ingest (the git check), watch (the root check) and every command's store check: each
    is one `error:` line, exit 2, and nothing stored is touched."""
    needs_permissions()
    with open_tempdir() as base:
        deep, store = base / "private" / "deep", base / "store"
        deep.mkdir(parents=True)
        (deep / "q.md").write_text("# Q\n\nquarterly notes\n")
        common = ["--domain", "docs", "--tenant", "t"]
        # in this process first: it also imports what the unprivileged runs need
        assert main(["ingest", str(deep), *common, "--store", str(store), "--no-progress"]) == 0
        capsys.readouterr()
        open_to_all(store)
        (base / "private").chmod(0)
        runs = {
            "ingest": ["ingest", str(deep), *common, "--store", str(store), "--no-progress"],
            "watch": ["watch", str(deep), *common, "--store", str(store)],
            "search": ["search", "q", "--tenant", "t", "--store", str(deep / "store")],
            "serve": ["serve", "--tenant", "t", "--store", str(deep / "store")],
        }
        for name, argv in runs.items():
            code, _out, err = cli_as_unprivileged(argv, home=base)
            lines = err.strip().splitlines()
            assert code == 2 and "Traceback" not in err, (name, err)
            assert lines[-1].startswith("error: ") and "ermission denied" in lines[-1], (name, err)
        (base / "private").chmod(0o755)
        edge = EdgeStore(store)
        try:
            assert set(load_manifest(edge, "docs", "t")) == {(deep / "q.md").as_posix()}
        finally:
            edge.close()
