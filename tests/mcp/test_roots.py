"""Paths from tool calls stay under the configured roots: a property over generated paths
through a tree with links in and out of the roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.errors import InvalidRequestError
from server.roots import resolve_under_roots

SEGMENTS = ["a", "b", "..", ".", "out", "in", "loop", "f.md", "root", "root-x", ""]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("roots")
    root = base / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "f.md").write_text("x")
    (base / "root-x" / "a").mkdir(parents=True)  # shares the root's name as a prefix
    (base / "secret").mkdir()
    (base / "secret" / "f.md").write_text("s")
    (root / "a" / "out").symlink_to(base / "secret", target_is_directory=True)
    (root / "in").symlink_to(root / "a", target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    return base


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=0, max_size=5), absolute=st.booleans())
def test_a_resolved_path_is_always_under_a_root(
    tree: Path, parts: list[str], absolute: bool
) -> None:
    root = tree / "root"
    path = "/".join(parts)
    if absolute:
        path = (tree / path).as_posix() if path else tree.as_posix()
    try:
        resolved, chosen = resolve_under_roots(path, [root])
    except InvalidRequestError as exc:
        assert "\n" not in str(exc)
        return
    assert ".." not in parts
    assert chosen == root.resolve()
    assert resolved == resolved.resolve() and resolved.is_relative_to(chosen)
    assert os.path.exists(resolved)


def test_no_roots_and_prefix_siblings(tree: Path) -> None:
    with pytest.raises(InvalidRequestError, match="--root"):
        resolve_under_roots("a", [])
    with pytest.raises(InvalidRequestError, match="outside"):
        resolve_under_roots((tree / "root-x" / "a").as_posix(), [tree / "root"])
    with pytest.raises(InvalidRequestError, match="through a link"):
        resolve_under_roots("a/out", [tree / "root"])
    resolved, root = resolve_under_roots("in/b", [tree / "root"])
    assert resolved == (tree / "root" / "a" / "b").resolve() and root == (tree / "root").resolve()
