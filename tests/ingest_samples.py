"""Real-shaped inputs for the ingestion tests (and a minimal PDF writer)."""

from __future__ import annotations

MARKDOWN = """# Storage Guide

Intro paragraph about the storage engine.

## Installation

Install the package with pip.

```bash
# this is not a heading
pip install storage-engine
```

### Configuring the cache

Set `CACHE_SIZE` to the number of entries.

## Usage

Open a store and write records.
"""

CONTRACT = """SERVICES AGREEMENT

This Services Agreement is made between Acme Corp (the "Supplier") and Beta Ltd (the "Customer").

1. Definitions

1.1 "Services" means the consulting services described in Schedule 1.

1.2 "Fees" means the amounts payable under clause 4.

2. Obligations of the Supplier

2.1 The Supplier shall perform the Services with reasonable skill and care.

2.2 The Supplier shall:
(a) comply with all applicable laws;
(b) keep the Customer's data confidential; and
(c) notify the Customer of any delay within five days.

12. Termination

12.3 Either party may terminate this Agreement:
(a) on thirty days' written notice; or
(b) immediately if the other party commits a material breach.

13. Governing Law

This Agreement is governed by the laws of England and Wales.
"""

PYTHON_MODULE = '''"""Utilities for a tiny key-value cache."""

import time
from collections import OrderedDict

DEFAULT_TTL = 60


def now() -> float:
    """Seconds since the epoch."""
    return time.time()


class Cache:
    """An LRU cache with expiry."""

    max_items = 128

    def __init__(self, ttl: float = DEFAULT_TTL) -> None:
        self.ttl = ttl
        self._data: OrderedDict[str, tuple[float, object]] = OrderedDict()

    @property
    def size(self) -> int:
        return len(self._data)

    async def fetch(
        self,
        key: str,
    ) -> object | None:
        """Return the value for key unless it expired."""
        entry = self._data.get(key)
        if entry is None:
            return None
        return entry[1]
'''

TYPESCRIPT = """import { readFile } from "fs/promises";

/** Parse a config file. */
export async function loadConfig(path: string): Promise<Config> {
  const text = await readFile(path, "utf8");
  return JSON.parse(text) as Config;
}

export interface Config {
  name: string;
  retries: number;
}

export class RetryPolicy {
  constructor(private readonly retries: number) {}

  /** Delay before the given attempt, in milliseconds. */
  delayFor(attempt: number): number {
    return Math.min(1000 * 2 ** attempt, 30000);
  }
}

export const isTransient = (status: number): boolean => status >= 500;
"""


def make_pdf(pages: list[list[str]], title: str = "") -> bytes:
    """A valid PDF with one Helvetica text line per string, one page per list."""
    objects: list[bytes] = []
    n_pages = len(pages)
    font_id = 3 + 2 * n_pages
    info_id = font_id + 1
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    for i, lines in enumerate(pages):
        content_id = 4 + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        ops = ["BT", "/F1 11 Tf", "14 TL", "50 750 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
            + b"\nendstream"
        )  # fmt: skip
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    objects.append(f"<< /Title ({title}) >>".encode())
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += (
        f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {info_id} 0 R >>\n"
        f"startxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
