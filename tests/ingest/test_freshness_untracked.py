"""A git root's freshness sees new files: the work tree has moved exactly when a new ingest
would take a file that is not in the commit the index reflects.

Before, only tracked files counted (``git status --untracked-files=no``): a file created after
the sync and never committed (what an agent writes) left the root "fresh" while the index did
not hold it. The invariant is stated against the walk itself (:func:`discover`), so the two
cannot drift apart: moved <=> the walk takes a file beyond the synced ones.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from watch_support import git

from server.ingest.walker import discover
from server.retrieval import freshness
from server.settings import Domain

# untracked files of every kind the walk treats differently: taken by one domain or the other,
# hidden, under an always-ignored folder, .gitignore'd, under the store, of no indexed type
CANDIDATES = [
    "new.md",
    "notes.txt",
    "LICENSE",
    "sub/deep/guide.rst",
    "tool.py",
    "sub/lib.rs",
    "data.json",
    "image.png",
    ".draft.md",
    ".cache/x.md",
    "node_modules/pkg/readme.md",
    "build/out.md",
    "store/segment.json",
    "store/notes.md",
]


def _work_tree(root: Path) -> None:
    (root / "base.md").write_text("# Base\n\nCommitted text.\n")
    (root / "base.py").write_text("def base():\n    return 1\n")
    (root / ".gitignore").write_text("build/\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    new=st.lists(st.sampled_from(CANDIDATES), unique=True, max_size=4),
    domain=st.sampled_from([Domain.DOCS, Domain.CODE]),
)
def test_moved_exactly_when_the_walk_takes_a_new_file(new: list[str], domain: Domain) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(os.path.realpath(tmp)) / "wt"
        root.mkdir()
        _work_tree(root)
        store = [root / "store"]
        synced = freshness.git_state(root, domain, store)
        assert synced is not None
        taken_before = {f.path for f in discover([root], domain, 10**6, exclude=store).files}
        for name in new:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text("fresh text about otters\n")
        now = freshness.git_state(root, domain, store)
        taken = {f.path for f in discover([root], domain, 10**6, exclude=store).files}
        assert now is not None and now.commit == synced.commit
        assert (now.tree != synced.tree) == bool(taken - taken_before), (new, domain)


def test_tracked_fingerprint_is_unchanged_without_new_files(tmp_path: Path) -> None:
    """Records written before untracked files counted still match a tree with none: the
    tracked part hashes as ``--untracked-files=no`` did."""
    root = tmp_path / "wt"
    root.mkdir()
    _work_tree(root)
    (root / "base.md").write_text("# Base\n\nEdited, not committed.\n")
    (root / "image.png").write_bytes(b"\x89PNG")  # untracked, of no indexed type
    assert freshness.git_state(root, Domain.DOCS) == freshness.git_state(root)
    (root / "LICENSE").write_text("a new licence file\n")  # a docs file, not a code one
    assert freshness.git_state(root, Domain.DOCS) != freshness.git_state(root)
    assert freshness.git_state(root, Domain.CODE) == freshness.git_state(root)
