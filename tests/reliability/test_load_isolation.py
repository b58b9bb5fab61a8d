"""Load with isolation: client threads over many tenants, every answer checked to be the
tenant's own.

Each tenant starts with one ledger named after it ("Marker <subdomain>") and the load adds
more ("Marker <subdomain> #<n>"), so an answer from another tenant's database shows at once:
every ledger name in ``GET /api/ledgers`` must carry the asked tenant's marker, ``GET
/api/auth/me`` must name that tenant and its admin, and a created ledger must come back as
sent. At the end each tenant's database is read behind the API's back: it holds exactly its
marker and the ledgers created for it.

The default run is short (4 s, 20 tenants, 4 threads per backend) over the Flask test client
(WSGI in-process: the app's whole request flow, without sockets); ``-m reliability`` runs 60 s
over 50 tenants with 8 threads against a real ``finvera serve`` (gunicorn, 2 workers) over
HTTP. FINVERA_RELIABILITY_SCALE multiplies the seconds, tenants and threads.
"""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from api.models.tenant import AccountGroup, Ledger
from tests.reliability.conftest import (
    BACKENDS,
    Server,
    build_platform,
    environment_for,
    figures,
    percentile,
    scaled,
)

PATTERN = (("list", 7), ("me", 2), ("create", 1))  # request mix, by weight


@dataclass
class Tally:
    """What the load saw: per request its latency; errors and cross-tenant answers by kind."""

    latencies: list[float] = field(default_factory=list)
    kinds: Counter = field(default_factory=Counter)
    errors: list = field(default_factory=list)
    cross_tenant: list = field(default_factory=list)
    created: Counter = field(default_factory=Counter)  # subdomain -> ledgers created
    lock: threading.Lock = field(default_factory=threading.Lock)


class FlaskClientTransport:
    """One Flask test client per thread: requests through the whole WSGI app in-process."""

    name = "Flask test client"

    def __init__(self, app) -> None:
        self.client = app.test_client()

    def send(self, method, path, headers, body=None):
        response = self.client.open(path, method=method, headers=headers, json=body)
        return response.status_code, response.get_json(silent=True)

    def close(self):
        pass


class HttpTransport:
    """One keep-alive HTTP/1.1 connection per thread to the real server."""

    name = "HTTP to finvera serve"

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def send(self, method, path, headers, body=None):
        payload = json.dumps(body).encode() if body is not None else None
        headers = {**headers, **({"Content-Type": "application/json"} if payload else {})}
        try:
            self.conn.request(method, path, body=payload, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None

    def close(self):
        self.conn.close()


def groups_of(platform, tenant) -> int:
    with platform.tenant_session(tenant.subdomain) as session:
        return session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "cash_in_hand"))


def run_load(platform, transports, seconds: float) -> Tally:
    tally, stop = Tally(), threading.Event()
    group = {t.subdomain: groups_of(platform, t) for t in platform.tenants}
    kinds = [kind for kind, weight in PATTERN for _ in range(weight)]
    barrier = threading.Barrier(len(transports) + 1)

    def check(tenant, kind, status, body, sent_name):
        """Why an answer is not this tenant's own, or None."""
        data = (body or {}).get("data") or {}
        if kind == "list":
            names = [ledger["name"] for ledger in data.get("ledgers", [])]
            if tenant.marker not in names or not all(tenant.owns(n) for n in names):
                return names
        elif kind == "me":
            seen = (data.get("tenant", {}).get("subdomain"), data.get("user", {}).get("email"))
            if seen != (tenant.subdomain, f"admin@{tenant.subdomain}.in"):
                return seen
        elif data.get("ledger", {}).get("name") != sent_name:
            return data.get("ledger")
        return None

    raised = []

    def guarded(number):
        try:
            client_thread(number)
        except BaseException as exc:  # reported in the test's own thread
            raised.append(exc)

    def client_thread(number):
        rng, transport, serial = random.Random(number), transports[number], 0
        barrier.wait(60)
        while not stop.is_set():
            tenant, kind = rng.choice(platform.tenants), rng.choice(kinds)
            sent_name = None
            if kind == "list":
                request = ("GET", "/api/ledgers?limit=200", None)
            elif kind == "me":
                request = ("GET", "/api/auth/me", None)
            else:
                serial += 1
                sent_name = f"{tenant.marker} #{number}-{serial}"
                request = ("POST", "/api/ledgers", {"name": sent_name,
                                                    "account_group_id": group[tenant.subdomain]})
            started = time.perf_counter()
            try:
                status, body = transport.send(request[0], request[1], tenant.headers,
                                              request[2])
            except (OSError, http.client.HTTPException) as exc:
                status, body = None, repr(exc)
            elapsed = time.perf_counter() - started
            expected = 201 if kind == "create" else 200
            wrong = check(tenant, kind, status, body, sent_name) if status == expected else None
            with tally.lock:
                tally.latencies.append(elapsed)
                tally.kinds[kind] += 1
                if status != expected:
                    tally.errors.append((kind, tenant.subdomain, status, body))
                elif wrong is not None:
                    tally.cross_tenant.append((kind, tenant.subdomain, wrong))
                elif kind == "create":
                    tally.created[tenant.subdomain] += 1

    threads = [threading.Thread(target=guarded, args=(n,), daemon=True)
               for n in range(len(transports))]
    for thread in threads:
        thread.start()
    barrier.wait(60)
    time.sleep(seconds)  # the load's duration: nothing is awaited here
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a client thread hung"
    assert raised == [], raised[:3]
    for transport in transports:
        transport.close()
    return tally


def check_databases(platform, tally: Tally) -> int:
    """Each tenant's database holds its marker and the ledgers made for it, nothing else."""
    checked = 0
    for tenant in platform.tenants:
        with platform.tenant_session(tenant.subdomain) as session:
            names = session.scalars(sa.select(Ledger.name)).all()
        assert all(tenant.owns(name) for name in names), (tenant.subdomain, names)
        assert len(names) == 1 + tally.created[tenant.subdomain], tenant.subdomain
        checked += len(names)
    return checked


def report(platform, tally: Tally, transport: str, threads: int, seconds: float,
           server_log: str | None = None) -> None:
    rows = check_databases(platform, tally)
    requests = len(tally.latencies)
    figures(f"load with isolation ({platform.dbs.backend.name}, {transport})",
            tenants=len(platform.tenants), threads=threads, seconds=seconds,
            requests=requests, per_second=round(requests / seconds, 1),
            mix=dict(tally.kinds), errors=len(tally.errors),
            cross_tenant_answers=len(tally.cross_tenant),
            p50_ms=round(percentile(tally.latencies, 0.50) * 1000, 1),
            p99_ms=round(percentile(tally.latencies, 0.99) * 1000, 1),
            max_ms=round(max(tally.latencies, default=0) * 1000, 1),
            ledgers_checked_in_databases=rows)
    assert tally.cross_tenant == []
    assert tally.errors == [], tally.errors[:5]
    assert requests > 0 and tally.kinds["create"] > 0
    if server_log is not None:
        assert "Traceback" not in server_log and '" 500 ' not in server_log


def populate(platform, tenants: int) -> None:
    with ThreadPoolExecutor(4) as pool:  # sign-ups of different subdomains run side by side
        list(pool.map(platform.add_tenant, [f"load-{n:03d}" for n in range(tenants)]))
    platform.tenants.sort(key=lambda tenant: tenant.subdomain)


@pytest.fixture(params=BACKENDS)
def built(request, tmp_path):
    made = build_platform(environment_for(request.param, request, tmp_path))
    yield made
    made.close()


def test_short_load_over_20_tenants_answers_each_with_its_own_data(built):
    populate(built, scaled(20, minimum=2))
    threads, seconds = scaled(4, minimum=2), scaled(4, minimum=1)
    tally = run_load(built, [FlaskClientTransport(built.app) for _ in range(threads)], seconds)
    report(built, tally, FlaskClientTransport.name, threads, seconds)


@pytest.mark.reliability
def test_a_minute_of_http_load_over_50_tenants_answers_each_with_its_own_data(
        built, tmp_path):
    populate(built, scaled(50, minimum=2))
    threads, seconds = scaled(8, minimum=2), scaled(60, minimum=1)
    server = Server(built.env, tmp_path / "serve.log", workers=2, threads=8)
    try:
        server.wait_ready()
        tally = run_load(built, [HttpTransport(server.port) for _ in range(threads)], seconds)
    finally:
        server.stop()
    report(built, tally, HttpTransport.name, threads, seconds, server.log)
