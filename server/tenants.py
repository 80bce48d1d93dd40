"""Tenant names: one rule for every way in (ingest, index, delete, search, serve, tokens).

A tenant name is a key in payload filters, token files and logs; the rule keeps it printable
and unambiguous. Checking it only where a server starts let ``ingest --tenant "a b"`` store data
that no server would ever serve.
"""

from __future__ import annotations

import re

from server.errors import InvalidRequestError

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
"""Letters, digits and ``._@-``, starting with a letter or digit, up to 128 characters."""


def validate_tenant(tenant: object) -> str:
    """The tenant name unchanged, or InvalidRequestError with a one-line reason."""
    if not isinstance(tenant, str) or not tenant.strip():
        raise InvalidRequestError("a tenant is required")
    if not TENANT_PATTERN.match(tenant):
        raise InvalidRequestError(
            f"invalid tenant {tenant!r}: use letters, digits and . _ @ - (up to 128 characters)"
        )
    return tenant
