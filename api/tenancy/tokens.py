"""Bearer tokens: signed (HS256), expiring, and bound to the tenant they were issued for.

A tenant token carries the tenant's id and database name; it is refused on every other tenant
(a tenant recreated under the same id has another database name) and on admin endpoints. An
admin token carries no tenant and is refused on tenant endpoints.

Verified tokens are remembered per process (the token string to its claims, never past the
token's own expiry), so a client's repeated requests do not each pay the signature check;
what a token may do (its user active, its role) is checked on every request all the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from api.tenancy.expiring import ExpiringCache

ADMIN, TENANT = "admin", "tenant"
MAX_REMEMBERED = 10_000  # verified tokens kept per process


class TokenInvalid(Exception):
    """Missing, malformed, forged, expired, or meant for somewhere else."""


@dataclass(frozen=True)
class Claims:
    scope: str
    user_id: int
    tenant_id: int | None = None
    tenant_db: str | None = None


class TokenService:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key, self.ttl_seconds = key, ttl_seconds
        self._verified: ExpiringCache[str, Claims] = ExpiringCache(MAX_REMEMBERED, ttl_seconds)

    def issue(self, claims: Claims) -> str:
        now = int(time.time())
        payload = {"sub": str(claims.user_id), "scope": claims.scope, "iat": now,
                   "exp": now + self.ttl_seconds}
        if claims.scope == TENANT:
            payload.update(tid=claims.tenant_id, tdb=claims.tenant_db)
        return jwt.encode(payload, self._key, algorithm="HS256")

    def verify(self, token: str) -> Claims:
        """The claims of a valid token (remembered until it expires), or TokenInvalid."""
        return self._verified.get(token, lambda: self._check(token))

    def _check(self, token: str) -> tuple[Claims, float]:
        """Verify the signature and the claims; the claims and how long they stay valid."""
        try:
            payload = jwt.decode(token, self._key, algorithms=["HS256"],
                                 options={"require": ["exp", "iat", "sub", "scope"]})
            claims = Claims(scope=payload["scope"], user_id=int(payload["sub"]),
                            tenant_id=payload.get("tid"), tenant_db=payload.get("tdb"))
            expires_in = float(payload["exp"]) - time.time()
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenInvalid(str(exc)) from None
        if claims.scope not in (ADMIN, TENANT) or (
                claims.scope == TENANT and not (claims.tenant_id and claims.tenant_db)):
            raise TokenInvalid("unknown token scope")
        return claims, expires_in
