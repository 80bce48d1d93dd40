"""A git root's freshness follows what an ingest would take: the work tree has moved exactly
when a walk of the root takes files (or misses files) the synced index does not reflect.

Field reports: a file created after the sync and never committed (what an agent writes) left
the root "fresh" while the index did not hold it (untracked files never counted); a file git
hides by ``.git/info/exclude`` or inside a nested repository did too (the walk applies only
``.gitignore`` files and does not stop at a nested repository), and so did an edit or a new
file inside a submodule (git diffs a submodule's commit only); a symlink the walk skips made
it "stale"; and ``git add`` / ``git commit`` of files already synced made a watched root
"stale" forever (the fingerprint was git's view of the index, not the content). The
invariant is stated against the walk itself (:func:`discover`), so the two cannot drift apart.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from watch_support import git

from server.ingest.walker import discover
from server.retrieval import freshness
from server.settings import Domain

# files of every kind the walk treats differently: taken by one domain or the other, hidden,
# under an always-ignored folder, .gitignore'd, excluded by git alone, in a nested repository,
# a symlink, empty, under the store, of no indexed type, a script typed by its shebang
CANDIDATES = [
    "new.md",
    "notes.txt",
    "LICENSE",
    "sub/deep/guide.rst",
    "tool.py",
    "sub/lib.rs",
    "data.json",
    "image.png",
    "bin/deploy",  # code by its shebang
    "bin/notes",  # no type, no shebang
    ".draft.md",
    ".cache/x.md",
    "node_modules/pkg/readme.md",
    "build/out.md",
    "excluded.md",
    "nested/inner.md",
    "link.md",
    "empty.md",
    "store/segment.json",
    "store/notes.md",
    # changes to what is there: same bytes rewritten, mode only, an ignored tracked file
    # edited, a taken file newly .gitignore'd
    "!rewrite",
    "!chmod",
    "!edit-forced",
    "!ignore",
    # inside a submodule (a gitlink): a tracked file edited, an untracked file, a commit of
    # the same bytes
    "!sub-edit",
    "vendor/lib/extra.md",
    "!sub-commit",
]


def _work_tree(root: Path) -> None:
    (root / "base.md").write_text("# Base\n\nCommitted text.\n")
    (root / "base.py").write_text("def base():\n    return 1\n")
    (root / ".gitignore").write_text("build/\n")
    (root / "build").mkdir()
    (root / "build" / "forced.md").write_text("tracked although ignored\n")
    git(root, "init", "-q", "-b", "main")
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text("excluded.md\n")  # git's own, not the walk's
    git(root, "add", "-A")
    git(root, "add", "-f", "build/forced.md")  # tracked, but the walk applies .gitignore
    library = root.parent / "library"  # a submodule's own repository
    library.mkdir()
    (library / "guide.md").write_text("# Library\n\nVendored text.\n")
    (library / "lib.py").write_text("def lib():\n    return 2\n")
    git(library, "init", "-q", "-b", "main")
    git(library, "add", "-A")
    git(library, "commit", "-qm", "library")
    git(
        root,
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(library),
        "vendor/lib",
    )
    git(root, "commit", "-qm", "base")


def _create(root: Path, name: str) -> None:
    if name == "!rewrite":
        (root / "base.md").write_bytes((root / "base.md").read_bytes())  # a new mtime
        return
    if name == "!chmod":
        (root / "base.md").chmod(0o755)
        return
    if name == "!edit-forced":
        (root / "build" / "forced.md").write_text("edited, still ignored\n")
        return
    if name == "!sub-edit":
        (root / "vendor" / "lib" / "guide.md").write_text("# Library\n\nEdited in place.\n")
        return
    if name == "!sub-commit":
        git(root / "vendor" / "lib", "commit", "-q", "--allow-empty", "-am", "same bytes")
        return
    if name == "!ignore":
        with (root / ".gitignore").open("a") as gitignore:
            gitignore.write("base.md\n")
        return
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name == "link.md":
        path.symlink_to("base.md")
        return
    if name == "empty.md":
        path.touch()  # the walk finds it, the ingest skips it: no text
        return
    shebang = "#!/usr/bin/env python3\n" if name == "bin/deploy" else ""
    path.write_text(shebang + "fresh text about otters\n")
    if name.startswith("nested/") and not (root / "nested" / ".git").exists():
        git(root / "nested", "init", "-q", "-b", "main")


def _taken(root: Path, domain: Domain, store: list[Path]) -> set[tuple[Path, bytes]]:
    """What an ingest reads: the files the walk takes with their bytes, but empty ones (no
    text to index)."""
    found = discover([root], domain, 10**6, exclude=store).files
    return {(f.path, f.path.read_bytes()) for f in found if f.path.stat().st_size > 0}


@settings(max_examples=40, deadline=None)
@given(
    new=st.lists(st.sampled_from(CANDIDATES), unique=True, min_size=1, max_size=6),
    domain=st.sampled_from([Domain.DOCS, Domain.CODE]),
)
def test_moved_exactly_when_what_the_walk_takes_changes(new: list[str], domain: Domain) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(os.path.realpath(tmp)) / "wt"
        root.mkdir()
        _work_tree(root)
        store = [root / "store"]
        synced = freshness.git_state(root, domain, store)
        taken_before = _taken(root, domain, store)
        for name in new:
            _create(root, name)
        now = freshness.git_state(root, domain, store, base=synced.commit if synced else None)
        assert synced is not None and now is not None
        moved = now.tree != synced.tree
        assert moved == (_taken(root, domain, store) != taken_before), (new, domain)


def test_committing_synced_files_does_not_move_the_root(tmp_path: Path) -> None:
    """HEAD moves with ``git add`` / ``git commit``; what the index holds does not."""
    root = tmp_path / "wt"
    root.mkdir()
    _work_tree(root)
    (root / "owl.md").write_text("# Owl\n")
    (root / "base.md").write_text("# Base\n\nEdited, not committed.\n")
    synced = freshness.git_state(root, Domain.DOCS)
    assert synced is not None
    for step in (("add", "owl.md"), ("commit", "-qm", "owl"), ("commit", "-qam", "edit")):
        git(root, *step)
        now = freshness.git_state(root, Domain.DOCS, base=synced.commit)
        assert now is not None and now.tree == synced.tree, step
        assert now.commit != synced.commit or step[0] == "add"
    (root / "owl.md").write_text("# Owl\n\nNow edited.\n")
    assert freshness.git_state(root, Domain.DOCS, base=synced.commit).tree != synced.tree
    (root / "owl.md").write_text("")  # emptied: the ingest would remove its chunks
    assert freshness.git_state(root, Domain.DOCS, base=synced.commit).tree != synced.tree
    assert freshness.git_state(root, Domain.DOCS, base="0" * 40) is None  # no such commit
