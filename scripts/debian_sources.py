"""Pinned Debian packages the tuning sets are built from, fetched with ``apt-get download``.

Each package is pinned to one version and the SHA-256 of its ``.deb`` (Debian 12 "bookworm"),
so a build reads the same bytes on every machine; a different version is refused rather than
silently giving another corpus. The packages are cached (default
``~/.cache/retrieval-mcp/eval-debs``) and unpacked with ``dpkg-deb -x``; nothing is installed.
Stdlib only.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(
    os.environ.get("RETRIEVAL_EVAL_DEBS") or Path.home() / ".cache" / "retrieval-mcp" / "eval-debs"
)


@dataclass(frozen=True)
class DebianPackage:
    """One pinned binary package."""

    name: str
    version: str
    sha256: str

    @property
    def filename(self) -> str:
        """The ``.deb`` file name apt-get writes (``:`` of an epoch is escaped as ``%3a``)."""
        return f"{self.name}_{self.version.replace(':', '%3a')}_all.deb"


DEBIAN_POLICY = DebianPackage(
    "debian-policy",
    "4.6.2.0",
    "ef9d01b625c3b87c3a845c2cd1b66f1a16e9240b2b9e5bee53472a00e8457a39",
)
DEBIAN_FAQ = DebianPackage(
    "debian-faq", "11.1", "427426e0cfa6888622fc1d72631071cb4b5a1f86ccde722e7820bcef284de5d0"
)
GOLANG_SRC = DebianPackage(
    "golang-1.19-src",
    "1.19.8-2",
    "2dfa82fe4f08f4e0193c532e561af4c91871f5235608f04f2bb8d57bb288df5a",
)
PYTHON_DOC = DebianPackage(
    "python3.11-doc",
    "3.11.2-6+deb12u9",
    "5b3594189d6ef9a6963ce0347fd307a1cc67620ad697e144db366070e2e146be",
)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpacked(package: DebianPackage, cache: Path = CACHE) -> Path:
    """Root of the unpacked package (downloaded and checked first when not cached).

    Raises SystemExit with a one-line reason when apt-get cannot fetch that exact version or the
    file's digest differs from the pin.
    """
    root = cache / f"{package.name}_{package.version}"
    if (root / ".complete").exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    deb = cache / package.filename
    if not deb.exists():
        if shutil.which("apt-get") is None:
            raise SystemExit(f"apt-get not found: cannot fetch {package.name} {package.version}")
        proc = subprocess.run(
            ["apt-get", "download", f"{package.name}={package.version}"],
            cwd=cache,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not deb.exists():
            reason = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SystemExit(
                f"apt-get download {package.name}={package.version} failed ({reason}); "
                "run `apt-get update` first, or put the .deb into "
                f"{cache} (RETRIEVAL_EVAL_DEBS)"
            )
    digest = _sha256(deb)
    if digest != package.sha256:
        raise SystemExit(f"{deb}: SHA-256 {digest} is not the pinned {package.sha256}")
    if root.exists():
        shutil.rmtree(root)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / ".complete").write_text(digest + "\n")
    return root
