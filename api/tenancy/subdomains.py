"""Tenant subdomains: the rule they follow, and the database names made from them."""

from __future__ import annotations

import re

SUBDOMAIN = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
RESERVED = frozenset({
    "www", "api", "admin", "app", "mail", "master", "main", "smtp", "imap", "pop", "ftp", "ns1",
    "ns2", "dns", "mx", "static", "assets", "cdn", "docs", "help", "support", "status", "blog",
    "billing", "login", "auth", "root", "system", "test", "staging", "dev", "demo", "finvera",
})


class SubdomainError(ValueError):
    """A subdomain that breaks the rule; the message says which part."""


def check_subdomain(value: str) -> str:
    """Return the subdomain if it is one a tenant may have, else raise SubdomainError.

    3 to 30 characters: lowercase letters, digits and hyphens, starting with a letter, not
    ending with a hyphen, and not a reserved name.
    """
    if not isinstance(value, str) or not 3 <= len(value) <= 30:
        raise SubdomainError("must be 3 to 30 characters")
    if not SUBDOMAIN.match(value):
        raise SubdomainError("lowercase letters, digits and hyphens only, starting with a "
                             "letter and not ending with a hyphen")
    if "--" in value:
        raise SubdomainError("must not contain two hyphens in a row")
    if value in RESERVED:
        raise SubdomainError(f"{value!r} is reserved")
    return value


def database_name(prefix: str, subdomain: str, unix_ms: int) -> str:
    """``<prefix><subdomain, hyphens as underscores>_<unix ms>``, as the seed names them."""
    return f"{prefix}{subdomain.replace('-', '_')}_{unix_ms}"


def quarantine_name(prefix: str, tenant_id: int) -> str:
    """``<prefix>_moving_<tenant id>``: where a moving tenant's tables wait while they are
    copied. Like the pool's, the name starts ``<prefix>_``, which no subdomain's can."""
    return f"{prefix}_moving_{tenant_id}"


def kept_name(prefix: str, tenant_id: int, unix_ms: int) -> str:
    """``<prefix>_kept_<tenant id>_<unix ms>``: an old copy a move kept (``--keep-source``)."""
    return f"{prefix}_kept_{tenant_id}_{unix_ms}"
