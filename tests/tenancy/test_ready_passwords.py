"""Generated admin passwords hashed ahead of time: each handed out once, each one logs in, and
a forked child starts with none of its parent's."""

import os
import time

from api.security import verify_password
from api.tenancy.provisioning import SignUp, provision_tenant
from api.tenancy.ready_passwords import ReadyPasswords
from tests.tenancy.test_pool import join_refills, pooled_app  # noqa: F401 (a fixture)


def wait_until_ready(passwords: ReadyPasswords, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while len(passwords._ready) < passwords.size:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_each_pair_is_handed_out_once_and_matches():
    passwords = ReadyPasswords(2)
    assert passwords.take() is None  # none ready yet: the caller hashes its own
    taken = []
    for _ in range(4):
        wait_until_ready(passwords)
        taken.append(passwords.take())
    assert len({password for password, _hash in taken}) == 4
    assert all(verify_password(hashed, password) for password, hashed in taken)
    assert ReadyPasswords(0).take() is None


def test_a_forked_child_does_not_hand_out_its_parents():
    passwords = ReadyPasswords(2)
    passwords.take()
    wait_until_ready(passwords)
    parents = {password for password, _hash in passwords._ready}
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the child: what it takes must not be one of the parent's
        taken = passwords.take()
        os.write(write, b"ok" if taken is None or taken[0] not in parents else b"reused")
        os._exit(0)
    os.close(write)
    assert os.read(read, 16) == b"ok"
    os.waitpid(child, 0)


def test_pooled_sign_ups_with_generated_passwords_log_in(pooled_app):  # noqa: F811
    dbs = pooled_app.extensions["finvera"]
    client = pooled_app.test_client()
    seen = set()
    dbs.ready_passwords.take()  # the first sign-up of a process starts the top-up
    for number in range(3):
        wait_until_ready(dbs.ready_passwords)
        subdomain = f"gen{number}"
        made = provision_tenant(dbs, SignUp("Gen", subdomain, f"o@{subdomain}.in"))
        assert made.generated_password not in seen
        seen.add(made.generated_password)
        login = client.post("/api/auth/login", headers={"X-Tenant-ID": subdomain},
                            json={"email": f"o@{subdomain}.in",
                                  "password": made.generated_password})
        assert login.status_code == 200
    join_refills()
