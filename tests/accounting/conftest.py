"""Two provisioned tenants and signed-in users of every role, for the tenant API's tests.

Tokens are issued by the app's own TokenService (logins are tested in test_tenant_routing.py),
which keeps these tests off the deliberately slow password hash.
"""

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from api.models.tenant import User
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.tokens import TENANT, Claims

ROLES = ("admin", "accountant", "viewer")


@dataclass
class TenantHandle:
    """One tenant as a test drives it: its record, its users' request headers, a client."""

    subdomain: str
    tenant: object
    headers: dict  # role -> headers (Authorization and X-Tenant-ID)
    client: object
    app: object

    def get(self, path, role="admin", **kwargs):
        return self.client.get(path, headers=self.headers[role], **kwargs)

    def post(self, path, json=None, role="admin"):
        return self.client.post(path, json=json, headers=self.headers[role])

    def patch(self, path, json=None, role="admin"):
        return self.client.patch(path, json=json, headers=self.headers[role])

    def delete(self, path, role="admin"):
        return self.client.delete(path, headers=self.headers[role])

    def session(self):
        """A session on this tenant's database, for checks behind the API's back."""
        dbs = self.app.extensions["finvera"]
        return Session(dbs.connections.engine(dbs.directory.find(self.subdomain).target))


def _handle(app, subdomain: str) -> TenantHandle:
    dbs, tokens = app.extensions["finvera"], app.extensions["finvera_tokens"]
    tenant = provision_tenant(dbs, SignUp(f"{subdomain.title()} Traders", subdomain,
                                          f"admin@{subdomain}.in",
                                          admin_password="admin password")).tenant
    handle = TenantHandle(subdomain, tenant, {}, app.test_client(), app)
    with handle.session() as session:
        users = {"admin": session.query(User).filter_by(role="admin").one()}
        for role in ROLES[1:]:
            users[role] = User(email=f"{role}@{subdomain}.in", role=role,
                               password_hash="unused: tokens are issued directly")
            session.add(users[role])
        session.commit()
        for role, user in users.items():
            token = tokens.issue(Claims(scope=TENANT, user_id=user.id, tenant_id=tenant.id,
                                        tenant_db=tenant.db_name))
            handle.headers[role] = {"Authorization": f"Bearer {token}",
                                    "X-Tenant-ID": subdomain}
    return handle


@pytest.fixture
def acme(app) -> TenantHandle:
    return _handle(app, "acme")


@pytest.fixture
def zenith(app) -> TenantHandle:
    return _handle(app, "zenith")
