"""Verified tokens are remembered, but never past their own expiry."""

from __future__ import annotations

import time

import jwt
import pytest

from api.tenancy.tokens import TENANT, Claims, TokenInvalid, TokenService

KEY = b"k" * 32


def test_a_remembered_token_still_expires_at_its_exp():
    service = TokenService(KEY, ttl_seconds=3600)
    exp = int(time.time()) + 2
    token = jwt.encode({"sub": "7", "scope": TENANT, "tid": 1, "tdb": "t_acme",
                        "iat": exp - 2, "exp": exp}, KEY, algorithm="HS256")
    claims = Claims(scope=TENANT, user_id=7, tenant_id=1, tenant_db="t_acme")
    assert service.verify(token) == claims
    assert service.verify(token) == claims  # from the cache now
    time.sleep(max(0.0, exp - time.time()) + 0.1)
    with pytest.raises(TokenInvalid):
        service.verify(token)


def test_an_invalid_token_is_refused_every_time():
    service, other = TokenService(KEY, 3600), TokenService(b"o" * 32, 3600)
    forged = other.issue(Claims(scope=TENANT, user_id=1, tenant_id=1, tenant_db="t_acme"))
    for _ in range(2):
        with pytest.raises(TokenInvalid):
            service.verify(forged)
