"""infra.config: defaults, values taken from config, and one clear error per bad key."""

import pulumi
import pytest

from infra.config import args_from_config
from tests.infra.program import MINIMAL, MINIMAL_SECRETS

SERVER = {"name": "tenants-2", "endpoint": "db2.example", "adminUser": "admin2",
          "adminPassword": "admin2-secret"}


def test_defaults_fill_everything_but_the_server(stack_config):
    args = args_from_config(stack_config({**MINIMAL, "endpoint": "db.example"}))

    assert (args.primary.host, args.primary.port, args.primary.admin_user) == (
        "db.example", 3306, "root")
    assert (args.db_name, args.master_db_name, args.tenant_db_prefix) == (
        "finvera_db", "finvera_master", "finvera_tenant_")
    assert (args.app_user, args.user_host, args.app_password) == ("finvera_app", "%", None)
    assert args.use_separate_db_users is False
    assert args.tenant_servers == () and args.primary.tenant_databases == ()


def test_every_key_is_read(stack_config):
    config = {**MINIMAL, "adminUser": "admin", "dbName": "fv_main", "masterDbName": "fv_master",
              "tenantDbPrefix": "fv_t_", "appUser": "fv_app", "userHost": "10.0.%",
              "appPassword": "app-secret", "useSeparateDbUsers": True,
              "tenantDatabases": ["fv_t_acme_1"],
              "tenantServers": [{**SERVER, "tenantDatabases": ["fv_t_globex_2"]}]}
    args = args_from_config(stack_config(
        config, [*MINIMAL_SECRETS, "appPassword", "tenantServers"]))

    assert (args.primary.admin_user, args.primary.tenant_databases) == ("admin", ("fv_t_acme_1",))
    assert (args.db_name, args.master_db_name, args.tenant_db_prefix) == (
        "fv_main", "fv_master", "fv_t_")
    assert (args.app_user, args.user_host, args.use_separate_db_users) == (
        "fv_app", "10.0.%", True)
    assert isinstance(args.app_password, pulumi.Output)
    (server,) = args.tenant_servers
    assert (server.name, server.endpoint, server.admin_user, server.tenant_databases) == (
        "tenants-2", "db2.example:3306", "admin2", ("fv_t_globex_2",))
    assert isinstance(server.admin_password, pulumi.Output)


SEPARATE = {"useSeparateDbUsers": True}
SERVERS_SECRET = (*MINIMAL_SECRETS, "tenantServers")


@pytest.mark.parametrize(("change", "secret_keys", "key"), [
    ({"endpoint": None}, MINIMAL_SECRETS, "finvera:endpoint"),
    ({"adminPassword": None}, (), "finvera:adminPassword"),
    ({"endpoint": "db.example:mysql"}, MINIMAL_SECRETS, "finvera:endpoint"),
    ({"endpoint": "db example"}, MINIMAL_SECRETS, "finvera:endpoint"),
    ({"dbName": "finvera-db"}, MINIMAL_SECRETS, "finvera:dbName"),
    ({"dbName": "d" * 65}, MINIMAL_SECRETS, "finvera:dbName"),
    ({"masterDbName": "finvera_tenant_master"}, MINIMAL_SECRETS, "finvera:masterDbName"),
    ({"tenantDbPrefix": "finvera_%"}, MINIMAL_SECRETS, "finvera:tenantDbPrefix"),
    ({"appUser": "app'@'%"}, MINIMAL_SECRETS, "finvera:appUser"),
    ({"userHost": "%' OR '1"}, MINIMAL_SECRETS, "finvera:userHost"),
    ({"useSeparateDbUsers": "yes"}, MINIMAL_SECRETS, "finvera:useSeparateDbUsers"),
    ({"tenantDatabases": ["finvera_tenant_a"]}, MINIMAL_SECRETS, "finvera:tenantDatabases"),
    ({**SEPARATE, "tenantDatabases": "finvera_tenant_a"}, MINIMAL_SECRETS,
     "finvera:tenantDatabases"),
    ({**SEPARATE, "tenantDatabases": ["finvera_db2"]}, MINIMAL_SECRETS,
     "finvera:tenantDatabases[0]"),
    ({**SEPARATE, "tenantDatabases": ["finvera_tenant_a", "finvera_tenant_a"]}, MINIMAL_SECRETS,
     "finvera:tenantDatabases[1]"),
    ({"tenantServers": [SERVER]}, MINIMAL_SECRETS, "finvera:tenantServers"),
    ({"tenantServers": {"tenants-2": SERVER}}, SERVERS_SECRET, "finvera:tenantServers"),
    ({"tenantServers": [{k: v for k, v in SERVER.items() if k != "adminPassword"}]},
     SERVERS_SECRET,
     "finvera:tenantServers[0].adminPassword"),
    ({"tenantServers": [{**SERVER, "endpoint": ""}]}, SERVERS_SECRET,
     "finvera:tenantServers[0].endpoint"),
    ({"tenantServers": [{**SERVER, "name": "primary"}]}, SERVERS_SECRET,
     "finvera:tenantServers[0].name"),
    ({"tenantServers": [{**SERVER, "name": "default"}]}, SERVERS_SECRET,
     "finvera:tenantServers[0].name"),
    ({"tenantServers": [SERVER, SERVER]}, SERVERS_SECRET, "finvera:tenantServers[1].name"),
    ({"tenantServers": [{**SERVER, "password": "x"}]}, SERVERS_SECRET,
     "finvera:tenantServers[0].password"),
    ({**SEPARATE, "tenantDatabases": ["finvera_tenant_a"],
      "tenantServers": [{**SERVER, "tenantDatabases": ["finvera_tenant_a"]}]}, SERVERS_SECRET,
     "finvera:tenantServers[0].tenantDatabases[0]"),
])
def test_bad_config_fails_with_one_message_naming_the_key(stack_config, change, secret_keys, key):
    config = {k: v for k, v in {**MINIMAL, **change}.items() if v is not None}

    with pytest.raises(pulumi.RunError) as failure:
        args_from_config(stack_config(config, secret_keys))

    first_line = str(failure.value).splitlines()[0]
    # Ours start with the key; Pulumi's own (missing value, not a bool) quote it.
    assert first_line.startswith(f"{key}: ") or f"'{key}'" in first_line
