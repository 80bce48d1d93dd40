"""Which paths the write tools may read: only what lies under a configured root.

A path from a tool call is untrusted. It is refused when it has a ``..`` segment, when it is
absolute and outside every root, and when resolving its links leads outside every root (a link
inside a root pointing at ``/etc``). Relative paths are taken under each root in turn (the
first where it exists). The resolved path is what gets indexed, so the check and the walk see
the same file tree (the walker does not follow links below it).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from server.errors import InvalidRequestError


def resolved_roots(roots: Sequence[Path | str]) -> list[Path]:
    """The configured roots, user-expanded and resolved (links followed), in order."""
    return [Path(root).expanduser().resolve() for root in roots]


def _inside(path: Path, roots: Sequence[Path]) -> Path | None:
    """The outermost root containing ``path`` (one job per outermost root), or None."""
    containing = [root for root in roots if path == root or path.is_relative_to(root)]
    return min(containing, key=lambda r: len(r.parts)) if containing else None


def _show(roots: Sequence[Path]) -> str:
    return ", ".join(r.as_posix() for r in roots)


def resolve_under_roots(path: str, roots: Sequence[Path | str]) -> tuple[Path, Path]:
    """``(resolved path, root)`` for a path a tool was given; InvalidRequestError (one line)
    when there are no roots, the path is empty, has ``..``, does not exist, or is (or
    resolves to) something outside every root."""
    if not roots:
        raise InvalidRequestError(
            "no roots are configured: start the server with --root PATH (or set "
            "RETRIEVAL_MCP__ROOTS) to let index_path read a folder"
        )
    if not path or not path.strip() or "\x00" in path:
        raise InvalidRequestError("the path is empty")
    parts = path.replace("\\", "/").split("/")
    if ".." in parts:
        raise InvalidRequestError(f"{path!r} contains '..': give a path under a root")
    real_roots = resolved_roots(roots)
    given_roots = [Path(os.path.abspath(Path(r).expanduser())) for r in roots]
    candidate = Path(path)
    if candidate.is_absolute():
        lexical = Path(os.path.normpath(candidate))
        if _inside(lexical, given_roots) is None and _inside(lexical, real_roots) is None:
            raise InvalidRequestError(
                f"{path} is outside the roots index_path may read ({_show(real_roots)})"
            )
    else:
        options = [root / candidate for root in real_roots]
        existing = [option for option in options if os.path.lexists(option)]
        if not existing:
            raise InvalidRequestError(
                f"{path!r} does not exist under any root ({_show(real_roots)})"
            )
        candidate = existing[0]
    try:
        resolved = candidate.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidRequestError(f"{path} does not exist") from None
    except (OSError, RuntimeError) as exc:  # RuntimeError: a link loop
        raise InvalidRequestError(f"cannot resolve {path}: {exc}") from None
    root = _inside(resolved, real_roots)
    if root is None:
        raise InvalidRequestError(
            f"{path} leads outside the roots through a link; "
            "only files under the roots can be indexed"
        )
    return resolved, root
