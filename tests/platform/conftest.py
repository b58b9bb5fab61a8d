"""The sales network's test kit: its blueprints on the app, an admin API client, ready rows.

Admins of each role come from ``admin_headers`` (tests/conftest.py: tokens issued directly,
no password hashing).
"""

import json
from dataclasses import dataclass
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.models.main import AuditLog, Commission
from api.models.master import TenantMaster
from api.platform.commissions import record_referral
from api.tenancy.tokens import TENANT, Claims


@dataclass
class AdminApi:
    """The /api/admin endpoints as an admin of a role drives them."""

    app: object
    client: object
    headers: dict  # role -> headers

    def call(self, method, path, json=None, role="admin"):
        return self.client.open(f"/api/admin{path}", method=method, json=json,
                                headers=self.headers[role])

    def get(self, path, role="support"):
        return self.call("GET", path, role=role)

    def post(self, path, json=None, role="admin"):
        return self.call("POST", path, json, role)

    def patch(self, path, json=None, role="admin"):
        return self.call("PATCH", path, json, role)

    def delete(self, path, role="admin"):
        return self.call("DELETE", path, role=role)

    def create(self, path, json, name):
        """POST a new row and return it; the test fails on anything but 201."""
        response = self.post(path, json)
        assert response.status_code == 201, response.json
        return response.json["data"][name]

    def session(self, **options) -> Session:
        """A session on the main database, for checks (and set-ups) behind the API's back."""
        return Session(self.app.extensions["finvera"].main_engine, **options)

    def audit(self, entity_type: str) -> list[tuple]:
        """The main audit log's rows about ``entity_type``: (action, id, before, after)."""
        with self.session() as session:
            rows = session.scalars(sa.select(AuditLog).where(
                AuditLog.entity_type == entity_type).order_by(AuditLog.id)).all()
        return [(row.action, int(row.entity_id), json.loads(row.before_data or "null"),
                 json.loads(row.after_data or "null")) for row in rows]

    def count(self, model) -> int:
        with self.session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(model))

    def add_tenant(self, subdomain: str, plan: str | None = None) -> int:
        """A tenant_master row only (no database): enough for what refers to tenants."""
        with Session(self.app.extensions["finvera"].master_engine) as session:
            tenant = TenantMaster(subdomain=subdomain, company_name=subdomain.title(),
                                  email=f"o@{subdomain}.in", subscription_plan=plan,
                                  status="active")
            session.add(tenant)
            session.commit()
            return tenant.id

    def signup(self, tenant_id, code, plan="pro", on=date(2026, 5, 10)) -> list[Commission]:
        """What the sign-up will do once wired: record a tenant's referral, and commit."""
        with self.session(expire_on_commit=False) as session:
            made = record_referral(session, tenant_id=tenant_id, referral_code=code,
                                   plan_code=plan, on=on)
            session.commit()
            return made


@pytest.fixture
def api(app, client, admin_headers) -> AdminApi:
    tenant_token = app.extensions["finvera_tokens"].issue(
        Claims(scope=TENANT, user_id=1, tenant_id=1, tenant_db="finvera_t_acme"))
    return AdminApi(app, client, {**admin_headers,
                                  "tenant": {"Authorization": f"Bearer {tenant_token}"}})


@pytest.fixture
def network(api) -> dict:
    """A distributor (5%) with a salesman (10%), a salesman on his own (8%), a plan of
    Rs 1,000.00 (code "pro"), and codes: SAL-10 (the distributor's salesman, 10% discount),
    SOLO (the lone salesman) and DIST (the distributor)."""
    made = {"distributor": api.create("/distributors", {
        "name": "Deccan Distribution", "email": "deccan@example.in",
        "commission_rate": "5"}, "distributor")}
    made["salesman"] = api.create("/salesmen", {
        "name": "Asha Rao", "email": "asha@example.in", "commission_rate": "10",
        "distributor_id": made["distributor"]["id"]}, "salesman")
    made["solo"] = api.create("/salesmen", {"name": "Ravi Kumar", "email": "ravi@example.in",
                                            "commission_rate": "8"}, "salesman")
    made["plan"] = api.create("/subscription-plans", {
        "code": "pro", "name": "Pro", "price": "1000", "billing_period": "monthly",
        "storage_limit_mb": 1024}, "subscription_plan")
    for key, owner, code in (("salesman_code", {"salesman_id": made["salesman"]["id"]},
                              "SAL-10"),
                             ("solo_code", {"salesman_id": made["solo"]["id"]}, "SOLO"),
                             ("distributor_code", {"distributor_id": made["distributor"]["id"]},
                              "DIST")):
        made[key] = api.create("/referral-codes", {"code": code, "discount": "10", **owner},
                               "referral_code")
    return made
