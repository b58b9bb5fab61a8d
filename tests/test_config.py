"""Settings from the environment: the seed's defaults, and one clear line for each bad value."""

import base64
import stat
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from api.config import ConfigError, load_settings

MYSQL = {"DB_HOST": "db.internal", "ENCRYPTION_KEY": Fernet.generate_key().decode()}


def test_defaults_are_the_seeds(tmp_path):
    settings = load_settings({"FINVERA_DATA_DIR": str(tmp_path)})
    assert settings.backend_name == "sqlite"
    assert (settings.db_name, settings.master_db_name) == ("finvera_db", "finvera_master")
    assert (settings.db_user, settings.db_port) == ("root", 3306)
    assert settings.max_tenant_connections == 50
    assert settings.use_separate_db_users is False
    assert settings.tenant_db_prefix == "finvera_tenant_"


def test_mysql_is_chosen_by_db_host():
    settings = load_settings({**MYSQL, "DB_PORT": "3307", "USE_SEPARATE_DB_USERS": "true",
                              "MAX_TENANT_CONNECTIONS": "10"})
    assert settings.backend_name == "mysql"
    assert settings.db_port == 3307 and settings.use_separate_db_users
    assert settings.max_tenant_connections == 10


def test_embedded_key_is_generated_once_with_mode_0600(tmp_path):
    first = load_settings({"FINVERA_DATA_DIR": str(tmp_path)})
    key_file = tmp_path / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    second = load_settings({"FINVERA_DATA_DIR": str(tmp_path)})
    assert first.encryption_keys == second.encryption_keys
    Fernet(first.encryption_keys[0])  # a usable key


def test_a_32_character_secret_and_several_keys_are_accepted():
    secret = "your-32-character-encryption-key"
    fernet = Fernet.generate_key().decode()
    settings = load_settings({**MYSQL, "ENCRYPTION_KEY": f"{secret}, {fernet}"})
    assert settings.encryption_keys == (base64.urlsafe_b64encode(secret.encode()),
                                        fernet.encode())


@pytest.mark.parametrize("environment, variable", [
    ({"DB_PORT": "abc"}, "DB_PORT"),
    ({"DB_PORT": "70000"}, "DB_PORT"),
    ({"MAX_TENANT_CONNECTIONS": "0"}, "MAX_TENANT_CONNECTIONS"),
    ({"USE_SEPARATE_DB_USERS": "maybe"}, "USE_SEPARATE_DB_USERS"),
    ({"ENCRYPTION_KEY": "too-short"}, "ENCRYPTION_KEY"),
    ({"ENCRYPTION_KEY": "!" * 44}, "ENCRYPTION_KEY"),
    ({"ENCRYPTION_KEY": f"{Fernet.generate_key().decode()},"}, "ENCRYPTION_KEY"),
    ({"DB_NAME": "finvera; DROP DATABASE x"}, "DB_NAME"),
    ({"MASTER_DB_NAME": "bad-name"}, "MASTER_DB_NAME"),
    ({"TENANT_DB_PREFIX": "Tenant`"}, "TENANT_DB_PREFIX"),
    ({"DB_NAME": "same", "MASTER_DB_NAME": "same"}, "MASTER_DB_NAME"),
    ({"DB_NAME": "finvera_tenant_x"}, "DB_NAME"),
])
def test_bad_values_name_the_variable(environment, variable):
    with pytest.raises(ConfigError, match=variable):
        load_settings({**MYSQL, **environment})


def test_mysql_needs_an_encryption_key():
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY must be set"):
        load_settings({"DB_HOST": "db.internal"})


def test_separate_users_are_refused_on_sqlite(tmp_path):
    with pytest.raises(ConfigError, match="USE_SEPARATE_DB_USERS"):
        load_settings({"FINVERA_DATA_DIR": str(tmp_path), "USE_SEPARATE_DB_USERS": "true"})


@pytest.mark.parametrize("variable, value", [
    ("DB_PORT", "not-a-port"),
    ("ENCRYPTION_KEY", "wrong"),
    ("USE_SEPARATE_DB_USERS", "true"),
    ("TENANT_DB_SERVERS", '{"t2": {"host": "db2"}}'),
])
def test_the_cli_stops_with_one_line_and_no_traceback(tmp_path, variable, value):
    env = {"PATH": "/usr/bin:/bin", "FINVERA_DATA_DIR": str(tmp_path), variable: value}
    result = subprocess.run([sys.executable, "-m", "api", "init"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "finvera_master.sqlite3").exists()


def test_db_ssl_modes():
    assert load_settings(MYSQL).db_ssl == "preferred"
    assert load_settings({**MYSQL, "DB_SSL": "Disabled"}).db_ssl == "disabled"
    with pytest.raises(ConfigError, match="DB_SSL must be one of"):
        load_settings({**MYSQL, "DB_SSL": "sometimes"})


@pytest.mark.parametrize("value", ["-bad.in", "a..b", "under_score.in", "x" * 64 + ".in"])
def test_base_domain_must_be_a_host_name(value):
    with pytest.raises(ConfigError, match="BASE_DOMAIN"):
        load_settings({**MYSQL, "BASE_DOMAIN": value})


def test_a_tenant_prefix_leaves_room_for_the_longest_database_name():
    longest = "a" * 20
    assert load_settings({**MYSQL, "TENANT_DB_PREFIX": longest}).tenant_db_prefix == longest
    with pytest.raises(ConfigError, match="TENANT_DB_PREFIX"):
        load_settings({**MYSQL, "TENANT_DB_PREFIX": longest + "b"})


SECRET = "s3cret-never-shown"
SERVERS = '{"tenants-2": {"host": "db2.internal", "port": 3307}, ' \
          f'"tenants-3": {{"host": "10.0.0.7", "user": "app3", "password": "{SECRET}"}}}}'


def test_tenant_servers_are_read_with_the_db_host_credentials_by_default():
    settings = load_settings({**MYSQL, "DB_USER": "app", "DB_PASSWORD": "pw",
                              "TENANT_DB_SERVERS": SERVERS,
                              "TENANT_DB_SERVERS_CLOSED": " tenants-3 , default"})
    two, three = settings.tenant_db_servers
    assert (two.name, two.host, two.port, two.user, two.password) == (
        "tenants-2", "db2.internal", 3307, "app", "pw")
    assert (three.name, three.host, three.port, three.user, three.password) == (
        "tenants-3", "10.0.0.7", 3306, "app3", SECRET)
    assert settings.server_names == ("default", "tenants-2", "tenants-3")
    assert settings.open_servers == ("tenants-2",)
    assert SECRET not in repr(settings) and "'pw'" not in repr(settings)


def test_without_tenant_servers_default_is_the_only_one():
    settings = load_settings(MYSQL)
    assert settings.server_names == settings.open_servers == ("default",)


@pytest.mark.parametrize("servers, closed, problem", [
    ("{not json", "", "is not valid JSON"),
    ('["tenants-2"]', "", "must be a JSON object"),
    ('{"Tenants_2": {"host": "db2"}}', "", "server name 'Tenants_2'"),
    ('{"default": {"host": "db2"}}', "", "'default' is the DB_HOST server"),
    ('{"t2": "db2"}', "", "TENANT_DB_SERVERS['t2'] must be an object"),
    ('{"t2": {"host": "db2", "passwd": "x"}}', "", "unknown key 'passwd'"),
    ('{"t2": {"port": 3306}}', "", "TENANT_DB_SERVERS['t2'].host"),
    ('{"t2": {"host": "db 2"}}', "", "TENANT_DB_SERVERS['t2'].host"),
    ('{"t2": {"host": "db2", "port": "3306"}}', "", "TENANT_DB_SERVERS['t2'].port"),
    ('{"t2": {"host": "db2", "port": 0}}', "", "TENANT_DB_SERVERS['t2'].port"),
    ('{"t2": {"host": "db2", "user": ""}}', "", "TENANT_DB_SERVERS['t2'].user"),
    ('{"t2": {"host": "db2", "user": "u"}}', "", "gives a user but no password"),
    ('{"t2": {"host": "db2", "password": 5}}', "", "TENANT_DB_SERVERS['t2'].password"),
    ('{"t2": {"host": "db2"}, "t2": {"host": "db3"}}', "", "names server 't2' twice"),
    ('{"t2": {"host": "DB.internal"}}', "", "the same server as 'default'"),
    ('{"t2": {"host": "db2"}, "t3": {"host": "db2", "port": 3306}}', "",
     "the same server as 't2'"),
    ('{"t2": {"host": "db2"}}', "t3", "TENANT_DB_SERVERS_CLOSED names 't3'"),
    ('{"t2": {"host": "db2"}}', "t2,default", "closes every tenant server"),
    ("", "default", "closes every tenant server"),
])
def test_bad_tenant_servers_name_the_server_and_never_the_password(servers, closed, problem):
    env = {**MYSQL, "DB_HOST": "db.internal", "DB_PASSWORD": SECRET,
           "TENANT_DB_SERVERS": servers.replace('"x"', f'"{SECRET}"'),
           "TENANT_DB_SERVERS_CLOSED": closed}
    with pytest.raises(ConfigError) as failure:
        load_settings(env)
    message = str(failure.value)
    assert problem in message and SECRET not in message
    assert "\n" not in message


def test_tenant_servers_are_refused_on_sqlite(tmp_path):
    with pytest.raises(ConfigError, match="TENANT_DB_SERVERS needs MySQL/MariaDB"):
        load_settings({"FINVERA_DATA_DIR": str(tmp_path),
                       "TENANT_DB_SERVERS": '{"t2": {"host": "db2"}}'})
