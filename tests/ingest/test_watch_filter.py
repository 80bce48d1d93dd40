"""The watcher's event filter agrees with the walk: an event is kept exactly when a walk of the
root would find its path (property-tested over generated trees with .gitignore rules), so an
ignored path never causes a sync and a path the walk takes is never missed."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ingest.walker import discover
from server.ingest.watch_filter import EventFilter
from server.settings import Domain

NAMES = ["a", "b", "build", "node_modules", ".cache", "docs", "x.log"]
FILES = ["f.md", "g.txt", "h.log", ".hidden.md", "note.md"]
PATTERNS = ["build/", "*.log", "docs/*.txt", "!docs/keep.txt", "/a", "b/**/note.md", "x.log"]

trees = st.tuples(
    st.lists(st.lists(st.sampled_from(NAMES), min_size=0, max_size=3), min_size=1, max_size=6),
    st.lists(st.sampled_from(FILES), min_size=1, max_size=4),
    st.lists(st.sampled_from(PATTERNS), max_size=4),
    st.lists(st.sampled_from(PATTERNS), max_size=3),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_the_filter_keeps_exactly_what_the_walk_finds(
    tree: tuple[list[list[str]], list[str], list[str], list[str]],
) -> None:
    folders, files, root_rules, nested_rules = tree
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp).resolve()
        (repo / ".git").mkdir()
        (repo / ".gitignore").write_text("\n".join(root_rules) + "\n")
        root = repo / "root"
        root.mkdir()
        paths: list[Path] = []
        for parts in folders:
            folder = root.joinpath(*parts)
            folder.mkdir(parents=True, exist_ok=True)
            for name in files:
                (folder / name).write_text("text\n")
                paths.append(folder / name)
        (root / "docs").mkdir(exist_ok=True)
        (root / "docs" / ".gitignore").write_text("\n".join(nested_rules) + "\n")
        found = discover([root], Domain.DOCS, 10_000)
        keep = EventFilter(root)
        for path in paths:
            assert keep.keeps(path.as_posix()) == (path.as_posix() in found.present), path
            # a deleted path: kept unless ignored as a file or as a folder
            if not keep.keeps(path.as_posix()):
                continue
            path.unlink()
            gone_kept = keep.keeps(path.as_posix())
            path.write_text("text\n")
            assert gone_kept or keep._ignored(path, is_dir=True)


def test_gitignore_files_and_excluded_folders(tmp_path: Path) -> None:
    root = tmp_path.resolve()
    (root / ".gitignore").write_text("out/\n")
    (root / "store").mkdir()
    keep = EventFilter(root, excluded=[root / "store"])
    assert keep.keeps((root / ".gitignore").as_posix())  # re-evaluates the rules
    assert keep.keeps((root / "sub" / ".gitignore").as_posix())
    assert not keep.keeps((root / "out" / ".gitignore").as_posix())  # its folder is ignored
    assert not keep.keeps((root / "store" / "docs" / "retrieval_meta.json").as_posix())
    assert not keep.keeps((root / ".git" / "index").as_posix())
    assert not keep.keeps(root.as_posix()) and not keep.keeps("/elsewhere/a.md")
    (root / ".gitignore").write_text("")
    assert not keep.keeps((root / "out" / "a.md").as_posix())  # cached rules until told
    keep.forget_rules()
    assert keep.keeps((root / "out" / "a.md").as_posix())
