"""infra/__main__.py and the FinveraDatabases component under Pulumi's mocks: the resources
declared per config, least privilege for the application user, and secrets kept secret."""

import json

import pulumi
import pytest

from api.config import load_settings
from infra.databases import (
    SCHEMA_PRIVILEGES,
    FinveraDatabases,
    FinveraDatabasesArgs,
    ServerArgs,
)
from tests.infra.program import (
    DATABASE,
    GRANT,
    MINIMAL,
    MINIMAL_SECRETS,
    PROVIDER,
    RANDOM_PASSWORD,
    USER,
    Deployment,
    is_secret,
    plain_strings,
    reveal,
    run_program,
)

TENANT_PATTERN = r"finvera\_tenant\_%"
SEPARATE = {**MINIMAL, "useSeparateDbUsers": True}
SERVERS = [
    {"name": "tenants-2", "endpoint": "db2.example:3307", "adminPassword": "admin2-secret",
     "tenantDatabases": ["finvera_tenant_globex_2"]},
    {"name": "tenants-3", "endpoint": "db3.example", "adminUser": "ops",
     "adminPassword": "admin3-secret"},
]
SERVERS_SECRETS = (*MINIMAL_SECRETS, "tenantServers")


def grants_by_database(deployment: Deployment, endpoint: str = "db.example:3306") -> dict:
    """``{database: (privileges, with grant option)}`` of the app user's grants on a server."""
    grants = {}
    for resource in deployment.of_type(GRANT):
        inputs = resource.inputs
        if deployment.endpoint_of(resource) == endpoint and inputs["user"] == "finvera_app":
            assert (inputs["host"], inputs["table"]) == ("%", "*")
            grants[inputs["database"]] = (tuple(inputs["privileges"]), inputs["grant"])
    return grants


def assert_secrets_never_plain(deployment: Deployment, secrets: set[str]) -> None:
    """No secret value appears outside a secret, in any resource's inputs or any output."""
    for resource in deployment.resources:
        assert not set(plain_strings(resource.inputs)) & secrets, resource.name
    for name, value in deployment.outputs.items():
        if name not in deployment.secret_outputs:
            assert not set(plain_strings(value)) & secrets, name


def test_default_stack_declares_both_databases_and_the_app_user():
    deployment = run_program(MINIMAL, MINIMAL_SECRETS)

    (provider,) = deployment.inputs(PROVIDER)
    assert (provider["endpoint"], provider["username"]) == ("db.example:3306", "root")
    assert {(d["name"], d["defaultCharacterSet"], d["defaultCollation"])
            for d in deployment.inputs(DATABASE)} == {
        ("finvera_db", "utf8mb4", "utf8mb4_unicode_ci"),
        ("finvera_master", "utf8mb4", "utf8mb4_unicode_ci")}
    assert {d.name for d in deployment.of_type(DATABASE)} == deployment.protected
    assert [(u["user"], u["host"]) for u in deployment.inputs(USER)] == [("finvera_app", "%")]
    assert grants_by_database(deployment) == {
        r"finvera\_db": (SCHEMA_PRIVILEGES, False),
        r"finvera\_master": (SCHEMA_PRIVILEGES, False),
        TENANT_PATTERN: (SCHEMA_PRIVILEGES, False),
    }


def test_outputs_are_the_api_environment():
    deployment = run_program(MINIMAL, MINIMAL_SECRETS)

    (user,) = deployment.inputs(USER)
    assert deployment.outputs == {
        "DB_HOST": "db.example", "DB_PORT": "3306", "DB_NAME": "finvera_db",
        "MASTER_DB_NAME": "finvera_master", "DB_USER": "finvera_app",
        "DB_PASSWORD": user["plaintextPassword"], "USE_SEPARATE_DB_USERS": "false",
        "TENANT_DB_PREFIX": "finvera_tenant_", "TENANT_DB_SERVERS": "", "tenantUsers": {},
    }
    assert deployment.secret_outputs == {"DB_PASSWORD", "tenantUsers"}


@pytest.mark.parametrize("config", [MINIMAL, {**MINIMAL, "tenantServers": SERVERS[1:]}],
                         ids=["one server", "two servers"])
def test_without_separate_users_the_app_has_no_global_privilege_nor_grant_option(config):
    deployment = run_program(config, SERVERS_SECRETS)

    grants = deployment.inputs(GRANT)
    assert grants
    assert not [g for g in grants if g["database"] == "*"]
    assert not [g for g in grants if g["grant"]]


def test_generated_app_password_is_secret_everywhere():
    deployment = run_program(MINIMAL, MINIMAL_SECRETS)

    (generator,) = deployment.inputs(RANDOM_PASSWORD)
    assert (generator["length"], generator["special"]) == (32, False)
    (user,) = deployment.of_type(USER)
    assert is_secret(user.inputs["plaintextPassword"])
    assert is_secret(deployment.of_type(PROVIDER)[0].inputs["password"])
    assert "DB_PASSWORD" in deployment.secret_outputs
    assert_secrets_never_plain(deployment, {"admin-secret", deployment.outputs["DB_PASSWORD"]})


def test_app_password_from_config_is_used_instead_of_a_generated_one():
    deployment = run_program({**MINIMAL, "appPassword": "app-secret"},
                             [*MINIMAL_SECRETS, "appPassword"])

    assert not deployment.of_type(RANDOM_PASSWORD)
    assert deployment.outputs["DB_PASSWORD"] == "app-secret"
    assert "DB_PASSWORD" in deployment.secret_outputs
    assert_secrets_never_plain(deployment, {"admin-secret", "app-secret"})


def test_separate_users_add_create_user_and_grant_option_on_the_tenant_pattern_only():
    deployment = run_program(SEPARATE, MINIMAL_SECRETS)

    assert grants_by_database(deployment) == {
        r"finvera\_db": (SCHEMA_PRIVILEGES, False),
        r"finvera\_master": (SCHEMA_PRIVILEGES, False),
        TENANT_PATTERN: (SCHEMA_PRIVILEGES, True),
        "*": (("CREATE USER",), False),
    }
    assert len(deployment.of_type(USER)) == 1  # no tenant listed, no tenant user
    assert deployment.outputs["USE_SEPARATE_DB_USERS"] == "true"


def test_each_listed_tenant_gets_a_user_on_its_database_alone():
    tenants = ["finvera_tenant_acme_1", "finvera_tenant_globex_2"]
    deployment = run_program({**SEPARATE, "tenantDatabases": tenants}, MINIMAL_SECRETS)

    users = {u["user"]: u for u in deployment.inputs(USER)}
    assert set(users) == {"finvera_app", *tenants}
    tenant_grants = {g["user"]: g for g in deployment.inputs(GRANT) if g["user"] in tenants}
    assert {user: (g["database"], tuple(g["privileges"]), g["grant"])
            for user, g in tenant_grants.items()} == {
        "finvera_tenant_acme_1": (r"finvera\_tenant\_acme\_1", SCHEMA_PRIVILEGES, False),
        "finvera_tenant_globex_2": (r"finvera\_tenant\_globex\_2", SCHEMA_PRIVILEGES, False),
    }
    assert len(deployment.of_type(RANDOM_PASSWORD)) == 3
    assert "tenantUsers" in deployment.secret_outputs
    assert deployment.outputs["tenantUsers"] == {
        name: {"server": "default", "user": name, "password": users[name]["plaintextPassword"]}
        for name in tenants}
    assert_secrets_never_plain(
        deployment, {"admin-secret", *(u["plaintextPassword"] for u in users.values())})


def test_several_servers_each_get_a_provider_the_app_user_and_tenant_grants():
    deployment = run_program({**SEPARATE, "tenantServers": SERVERS}, SERVERS_SECRETS)

    assert {(p["endpoint"], p["username"], p["password"])
            for p in deployment.inputs(PROVIDER)} == {
        ("db.example:3306", "root", "admin-secret"),
        ("db2.example:3307", "root", "admin2-secret"),
        ("db3.example:3306", "ops", "admin3-secret")}
    assert all(is_secret(p.inputs["password"]) for p in deployment.of_type(PROVIDER))
    assert {deployment.endpoint_of(d) for d in deployment.of_type(DATABASE)} == {
        "db.example:3306"}
    app_users = [u for u in deployment.of_type(USER) if u.inputs["user"] == "finvera_app"]
    assert {deployment.endpoint_of(u) for u in app_users} == {
        "db.example:3306", "db2.example:3307", "db3.example:3306"}
    assert {reveal(u.inputs["plaintextPassword"]) for u in app_users} == {
        deployment.outputs["DB_PASSWORD"]}
    for endpoint in ("db2.example:3307", "db3.example:3306"):
        assert grants_by_database(deployment, endpoint) == {
            TENANT_PATTERN: (SCHEMA_PRIVILEGES, True),
            "*": (("CREATE USER",), False),
        }
    (tenant,) = [u for u in deployment.of_type(USER) if u.inputs["user"] != "finvera_app"]
    assert deployment.endpoint_of(tenant) == "db2.example:3307"
    assert deployment.outputs["tenantUsers"]["finvera_tenant_globex_2"]["server"] == "tenants-2"
    assert json.loads(deployment.outputs["TENANT_DB_SERVERS"]) == {
        "tenants-2": {"host": "db2.example", "port": 3307},
        "tenants-3": {"host": "db3.example", "port": 3306}}
    assert_secrets_never_plain(deployment, {"admin-secret", "admin2-secret", "admin3-secret"})


def test_the_upper_case_outputs_are_settings_the_api_accepts():
    """The stack's environment, as the deploy workflow loads it, configures every server."""
    deployment = run_program({**MINIMAL, "tenantServers": SERVERS[1:]}, SERVERS_SECRETS)
    environment = {name: value for name, value in deployment.outputs.items()
                   if name.isupper()}
    settings = load_settings({**environment, "ENCRYPTION_KEY": "k" * 32})

    (server,) = settings.tenant_db_servers
    assert (server.name, server.host, server.port, server.user, server.password) == (
        "tenants-3", "db3.example", 3306, "finvera_app", deployment.outputs["DB_PASSWORD"])
    assert settings.server_names == ("default", "tenants-3")


def test_every_resource_is_a_child_of_the_component():
    deployment = run_program({**SEPARATE, "tenantServers": SERVERS}, SERVERS_SECRETS)

    children = [urn for urn in deployment.urns if "FinveraDatabases::" not in urn]
    assert len(children) == len(deployment.resources) - 1
    assert all("::finvera:infra:FinveraDatabases$" in urn for urn in children)


def test_bad_config_stops_the_program_before_any_resource():
    with pytest.raises(pulumi.RunError, match=r"^finvera:dbName: "):
        run_program({**MINIMAL, "dbName": "finvera-db"}, MINIMAL_SECRETS)


@pulumi.runtime.test
def test_component_keeps_plain_passwords_secret(mocks):
    args = FinveraDatabasesArgs(
        primary=ServerArgs("primary", "db.example", 3306, "root", "admin-secret",
                           ("t_acme_1",)),
        tenant_servers=(), db_name="main", master_db_name="master", tenant_db_prefix="t_",
        app_user="app", user_host="%", app_password="app-secret", use_separate_db_users=True)
    databases = FinveraDatabases("finvera", args)

    def check(values):
        password_is_secret, tenant_users_are_secret, tenant_users = values
        assert password_is_secret and tenant_users_are_secret
        assert tenant_users["t_acme_1"]["user"] == "t_acme_1"
        (provider,) = [r for r in mocks.resources if r.typ == PROVIDER]
        assert is_secret(provider.inputs["password"])

    return pulumi.Output.all(
        pulumi.Output.from_input(databases.environment["DB_PASSWORD"]).is_secret(),
        databases.tenant_users.is_secret(),
        databases.tenant_users,
    ).apply(check)


def test_the_app_grants_tenant_users_what_infra_lets_it_grant():
    from api.tenancy.backends import TENANT_PRIVILEGES

    assert set(TENANT_PRIVILEGES) == set(SCHEMA_PRIVILEGES)
