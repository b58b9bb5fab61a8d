"""What the benchmarks share: the run's databases, the server, tenants, the load, the machine.

- ``BenchRun``: one run of a benchmark on the real MariaDB. Its unique prefix (``fb<hex>_``)
  names every database and DB user it makes (main, master, tenant databases, floors), and
  leaving the ``with`` block (normally, on an error, on Ctrl-C or SIGTERM) stops the servers it
  started and drops all of them: the server is shared with CI and other people.
- ``BenchServer``: the API under gunicorn exactly as ``finvera serve`` runs it (same options,
  gthread workers, access log), plus the baseline endpoints of ``api/bench_baseline.py`` and
  a stats endpoint, in a process of our own whose workers we can measure (CPU, memory).
  ``python -m bench.common serve`` is its entry point.
- ``create_tenants``: many tenants fast: one provisioned by ``provision_tenant``, the rest
  cloned from it with plain SQL (see its docstring).
- ``run_load``: a closed-loop HTTP load from client threads on keep-alive connections
  (http.client), with the latency of every request.
- ``machine``: what the figures were measured on.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import http.client
import itertools
import json
import os
import platform
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pymysql
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
URL_VARIABLE = "FINVERA_BENCH_MYSQL_URL"
DEFAULT_URL = "mysql://root@127.0.0.1:3306"
# The app's own variables never leak from the shell into a server we start.
APP_VARIABLES = ("DB_HOST", "DB_PORT", "DB_USER", "DB_PASSWORD", "DB_NAME", "MASTER_DB_NAME",
                 "TENANT_DB_PREFIX", "ENCRYPTION_KEY", "USE_SEPARATE_DB_USERS", "SECRET_KEY",
                 "FINVERA_DATA_DIR", "FINVERA_BACKUP_DIR", "DB_SSL", "BASE_DOMAIN",
                 "FINVERA_TEST_PAUSE_AT", "MAX_TENANT_CONNECTIONS", "TENANT_CACHE_TTL_SECONDS",
                 "TENANT_IDLE_SECONDS", "TENANT_CHECKOUT_TIMEOUT_MS", "FINVERA_BENCH_BASELINE",
                 "FINVERA_BENCH_BASELINE_DB", "PROMETHEUS_MULTIPROC_DIR", "TENANT_POOL_SIZE")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---- the run: prefix, environment, clean-up ----

class BenchRun:
    """One benchmark run: its prefix, the app's environment, and the clean-up at the end.

    ``env`` is the app's environment (MySQL backend, databases under the prefix, a fresh
    ENCRYPTION_KEY, DB_SSL=disabled: this MariaDB has TLS off, so "preferred" would only cost
    PyMySQL a TLS context per connection and negotiate nothing). ``extra`` adds to it.
    """

    def __init__(self, url: str | None = None, **extra: str) -> None:
        parts = urlsplit(url or os.environ.get(URL_VARIABLE, DEFAULT_URL))
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 3306
        self.user = unquote(parts.username or "root")
        self.password = unquote(parts.password or "")
        self.prefix = f"fb{secrets.token_hex(3)}_"
        self.env = {
            "DB_HOST": self.host, "DB_PORT": str(self.port), "DB_USER": self.user,
            "DB_PASSWORD": self.password, "DB_NAME": f"{self.prefix}db",
            "MASTER_DB_NAME": f"{self.prefix}master", "TENANT_DB_PREFIX": f"{self.prefix}t_",
            "ENCRYPTION_KEY": Fernet.generate_key().decode(), "DB_SSL": "disabled", **extra,
        }
        self.servers: list[BenchServer] = []
        self._previous_sigterm = None

    def __enter__(self) -> BenchRun:
        self.admin().close()  # fail now, with the server's message, if it cannot be reached
        # SIGTERM becomes SystemExit, so the clean-up below runs for it too.
        self._previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        return self

    def __exit__(self, *_exc) -> None:
        try:
            for server in reversed(self.servers):
                server.stop()
        finally:
            self.drop_everything()
            signal.signal(signal.SIGTERM, self._previous_sigterm or signal.SIG_DFL)

    def admin(self, database: str | None = None, **kwargs) -> pymysql.Connection:
        """An autocommit connection as the configured (admin) account."""
        params = {"host": self.host, "port": self.port, "user": self.user,
                  "password": self.password, "database": database, "autocommit": True,
                  "connect_timeout": 5, "ssl_disabled": True}
        params.update(kwargs)
        return pymysql.connect(**params)

    def settings(self, **extra: str):
        from api.config import load_settings

        return load_settings({**self.env, **extra})

    def create_user(self, suffix: str) -> tuple[str, str]:
        """A DB user under the prefix with every privilege on the run's databases only."""
        user, password = f"{self.prefix}{suffix}", secrets.token_urlsafe(16)
        pattern = self.prefix.replace("_", r"\_") + "%%"  # "%" once the arguments are in
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
            cur.execute(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO %s@'%%'", (user,))
        return user, password

    def drop_everything(self) -> None:
        """Drop every database and DB user whose name starts with this run's prefix."""
        like = self.prefix.replace("_", r"\_") + "%"
        with self.admin() as conn, conn.cursor() as cur:
            cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA "
                        "WHERE SCHEMA_NAME LIKE %s", (like,))
            names = [name for (name,) in cur.fetchall()]
            for name in names:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute("SELECT User, Host FROM mysql.user WHERE User LIKE %s", (like,))
            users = cur.fetchall()
            for user, host in users:
                cur.execute("DROP USER IF EXISTS %s@%s", (user, host))
        print(f"clean-up: dropped {len(names)} databases and {len(users)} DB users "
              f"prefixed {self.prefix}", flush=True)


STOP = threading.Event()  # set by SIGTERM: load loops end, and the run cleans up and exits


def _exit_on_sigterm(_signum, _frame):
    # An exception raised by a signal handler is lost if it lands in a finalizer (__del__),
    # so the flag is set too: the load loops and check_stop() see it and raise again.
    STOP.set()
    raise SystemExit(143)


def check_stop() -> None:
    """Raise SystemExit if SIGTERM came (for loops between the long steps)."""
    if STOP.is_set():
        raise SystemExit(143)


def platform_databases(run: BenchRun, **extra: str):
    """``Databases`` for the run's environment, with master and main created and migrated."""
    from api.tenancy.databases import Databases

    dbs = Databases(run.settings(**extra))
    dbs.initialize()
    return dbs


# ---- the server ----

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_environment(env: dict[str, str]) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    return {**clean, "PYTHONUNBUFFERED": "1", **env}


class BenchServer:
    """The API under gunicorn, as ``finvera serve`` runs it, in a child process of ours.

    ``env`` is the app's environment; ``baseline_db`` the tenant database the baseline
    endpoints read. The access log goes where ``finvera serve`` sends it (stdout), here to
    /dev/null; errors to a log file shown if the server fails.
    """

    def __init__(self, run: BenchRun, env: dict[str, str] | None = None, workers: int = 2,
                 threads: int = 8, baseline_db: str | None = None) -> None:
        self.run, self.workers, self.threads = run, workers, threads
        self.env = dict(env or run.env)
        if baseline_db:
            self.env["FINVERA_BENCH_BASELINE_DB"] = baseline_db
        self.port = 0
        self.process: subprocess.Popen | None = None
        self.log_path = Path(f"/tmp/{run.prefix}server_{os.getpid()}_{id(self)}.log")

    def start(self, timeout: float = 60) -> BenchServer:
        from api.metrics import MULTIPROCESS_VARIABLE

        self.port = free_port()
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # As `finvera serve` does before it starts gunicorn: the workers' Prometheus figures
        # add up through files in a directory of their own, set before the first import.
        self.metrics_dir = tempfile.mkdtemp(prefix=f"{self.run.prefix}metrics_")
        env = {**self.env, MULTIPROCESS_VARIABLE: self.metrics_dir}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.common", "serve", "--port", str(self.port),
             "--workers", str(self.workers), "--threads", str(self.threads)],
            cwd=ROOT, env=subprocess_environment(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._log)
        self.run.servers.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bench server exited {self.process.returncode}:\n{self.log}")
            try:
                status, _ = get(self.port, "/healthz")
                if status == 200 and len(self.worker_pids()) == self.workers:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"bench server not ready after {timeout}s:\n{self.log}")

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def worker_pids(self) -> list[int]:
        """The gunicorn workers: the children of the master process we started."""
        if self.process is None:
            return []
        pid = self.process.pid
        children: list[int] = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as handle:
                    children += [int(child) for child in handle.read().split()]
        except FileNotFoundError:
            return []
        return sorted(children)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the workers so far."""
        total = 0
        for pid in self.worker_pids():
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except FileNotFoundError:
                continue
        return total / CLOCK_TICKS

    def memory_kib(self) -> dict[int, dict[str, int]]:
        """Per worker: VmRSS (now) and VmHWM (peak), in KiB."""
        memory = {}
        for pid in self.worker_pids():
            values = {}
            try:
                with open(f"/proc/{pid}/status") as handle:
                    for line in handle:
                        key, _, rest = line.partition(":")
                        if key in ("VmRSS", "VmHWM"):
                            values[key] = int(rest.split()[0])
            except FileNotFoundError:
                continue
            memory[pid] = values
        return memory

    def stop(self) -> None:
        """SIGTERM to the gunicorn master (it stops its workers); SIGKILL by pid if it hangs."""
        if self.process is None or self.process.poll() is not None:
            self._close_log()
            return
        workers = self.worker_pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            for pid in [self.process.pid, *workers]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.process.wait(5)
        self._close_log()

    def _close_log(self) -> None:
        log = getattr(self, "_log", None)
        if log is not None and not log.closed:
            log.close()
            self.log_path.unlink(missing_ok=True)
        if getattr(self, "metrics_dir", None):
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir = None


def get(port: int, path: str, headers: dict | None = None, timeout: float = 10):
    """One GET on a fresh connection: (status, parsed JSON body or None)."""
    return request(port, "GET", path, headers=headers, timeout=timeout)


def request(port: int, method: str, path: str, body: dict | None = None,
            headers: dict | None = None, timeout: float = 60):
    """One request on a fresh connection: (status, parsed JSON body or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        all_headers = {**({"Content-Type": "application/json"} if data else {}),
                       **(headers or {})}
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None
    finally:
        conn.close()


def _serve_main(argv: list[str]) -> None:
    """``python -m bench.common serve``: what ``finvera serve`` runs after its start-up flow
    (the benchmark ran that flow already), with the baseline and stats endpoints added."""
    parser = argparse.ArgumentParser(prog="python -m bench.common serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    from prometheus_client.multiprocess import mark_process_dead

    from api.commands import GunicornServer

    class BenchGunicorn(GunicornServer):
        def load(self):
            from api import bench_baseline, create_app

            app = create_app()
            bench_baseline.register(app)
            _register_stats(app)
            return app

    # The options of api/commands.py's serve_command, unchanged (BenchServer has set
    # PROMETHEUS_MULTIPROC_DIR, as serve_command does before anything imports the library).
    BenchGunicorn({"bind": f"{args.host}:{args.port}", "workers": args.workers,
                   "threads": args.threads, "worker_class": "gthread", "accesslog": "-",
                   "timeout": 60,
                   "child_exit": lambda _server, worker: mark_process_dead(worker.pid)}).run()


def _register_stats(app) -> None:
    """``GET /bench/stats``: what the answering worker holds (for bench/connections.py).

    Reads private attributes of the directory and the connection manager: good enough for a
    benchmark, and nothing in the product depends on it."""

    def stats():
        dbs = app.extensions["finvera"]
        return {"pid": os.getpid(), "directory_entries": len(dbs.directory._cache),
                "tenant_views": len(dbs.connections._views),
                "open_tenant_connections": dbs.connections.open_connections,
                "max_views": dbs.connections.max_views}

    app.add_url_rule("/bench/stats", "bench_stats", stats)


# ---- tenants ----

@dataclass(frozen=True)
class BenchTenant:
    id: int
    subdomain: str
    db_name: str
    admin_user_id: int


def subdomain_for(number: int) -> str:
    return f"b{number:05d}"


def create_tenants(run: BenchRun, dbs, count: int, ledgers: int = 20,
                   threads: int = 4) -> list[BenchTenant]:
    """``count`` tenants, each with ``ledgers`` ledgers, made fast.

    The first is made by ``provision_tenant`` (the sign-up's own code: database, migrations,
    seed, admin user, encrypted connection info, active), and its ledgers are added. The others
    are clones of it, made with plain SQL on ``threads`` connections: CREATE DATABASE, each
    table's own ``SHOW CREATE TABLE`` statement (so keys, foreign keys and checks are the
    same; ``CREATE TABLE ... LIKE`` would drop the foreign keys), ``INSERT ... SELECT`` of
    every row (seed, admin user, ledgers, yoyo's records), then a tenant_master row as
    provisioning writes it (status active, connection info encrypted with the app's cipher).
    """
    import sqlalchemy as sa

    from api.models.tenant import AccountGroup, Ledger, User
    from api.tenancy.provisioning import SignUp, provision_tenant

    first = subdomain_for(1)
    template = provision_tenant(dbs, SignUp("Bench Company 00001", first, f"admin@{first}.in",
                                            admin_password="bench password")).tenant
    target = dbs.directory.find(first).target
    with dbs.connections.session(target) as session:
        group = session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "sundry_debtors")) or 1
        session.add_all([Ledger(
            name=f"Customer {n:02d}", account_group_id=group,
            opening_balance_paise=n * 125_050, opening_balance_type="Dr" if n % 3 else "Cr",
            gstin="27AAPFU0939F1ZV" if n % 2 else None, pan="AAPFU0939F" if n % 2 else None,
            state_code="27" if n % 2 else None, bill_wise=bool(n % 2))
            for n in range(1, ledgers + 1)])
        session.commit()
        admin_id = session.scalar(sa.select(User.id).where(User.role == "admin"))
    tenants = [BenchTenant(template.id, first, template.db_name, admin_id)]
    return tenants + clone_tenants(run, dbs, tenants[0], range(2, count + 1), threads)


def clone_tenants(run: BenchRun, dbs, template: BenchTenant, numbers: range,
                  threads: int = 4) -> list[BenchTenant]:
    """Tenants ``subdomain_for(n)`` for n in ``numbers``, cloned from ``template`` as
    ``create_tenants`` describes (so a benchmark can also grow its tenants in steps)."""
    from sqlalchemy.orm import Session

    from api.models.master import TenantMaster
    from api.tenancy.subdomains import database_name

    if not numbers:
        return []
    with run.admin(template.db_name) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = [name for name, _ in cur.fetchall()]
        ddl = []
        for table in tables:
            cur.execute(f"SHOW CREATE TABLE `{table}`")
            ddl.append(cur.fetchone()[1])
    settings = dbs.settings
    stamp = int(time.time() * 1000)
    names = {n: database_name(settings.tenant_db_prefix, subdomain_for(n), stamp + n)
             for n in numbers}
    local, opened = threading.local(), []

    def clone(number: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = run.admin()
            opened.append(local.conn)
        name = names[number]
        with local.conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_unicode_ci")
            cur.execute(f"USE `{name}`")
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            for statement in ddl:
                cur.execute(statement)
            for table in tables:
                cur.execute(f"INSERT INTO `{table}` SELECT * FROM `{template.db_name}`.`{table}`")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")

    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(clone, names))
    finally:
        for conn in opened:
            conn.close()

    info = {"server": "default", "host": settings.db_host, "port": settings.db_port}
    now = datetime.now(UTC).replace(tzinfo=None)
    with Session(dbs.master_engine) as session:
        rows = [TenantMaster(
            subdomain=subdomain_for(n), company_name=f"Bench Company {n:05d}",
            email=f"admin@{subdomain_for(n)}.in", status="active", db_name=name,
            db_connection_encrypted=dbs.cipher.encrypt({**info, "database": name}),
            provisioned_at=now) for n, name in names.items()]
        session.add_all(rows)
        session.commit()
        return [BenchTenant(row.id, row.subdomain, row.db_name, template.admin_user_id)
                for row in rows]


def tenant_headers(settings, tenant: BenchTenant) -> dict[str, str]:
    """The request headers of a tenant's admin: a token from the app's TokenService (as the
    tests issue them, off the slow password hash) and X-Tenant-ID."""
    from api.tenancy.tokens import TENANT, Claims, TokenService

    token = TokenService(settings.signing_key, settings.token_ttl_seconds).issue(Claims(
        scope=TENANT, user_id=tenant.admin_user_id, tenant_id=tenant.id,
        tenant_db=tenant.db_name))
    return {"Authorization": f"Bearer {token}", "X-Tenant-ID": tenant.subdomain}


class Zipf:
    """Picks indexes 0..n-1 with probability proportional to 1/(rank+1)**s (s=1: the classic
    Zipf; the first tenant gets about 19% of the requests of 100 tenants, the tenth 2%)."""

    def __init__(self, n: int, s: float = 1.0) -> None:
        weights = [1 / (rank + 1) ** s for rank in range(n)]
        total, running, self.cumulative = sum(weights), 0.0, []
        for weight in weights:
            running += weight / total
            self.cumulative.append(running)

    def pick(self, rng: random.Random) -> int:
        return min(bisect.bisect_left(self.cumulative, rng.random()), len(self.cumulative) - 1)


# ---- in-process CPU ----

def paired_cpu(first: Callable, second: Callable, pairs: int) -> list[tuple[float, float]]:
    """Call the two one after the other ``pairs`` times (which goes first alternates), each
    timed in this process's CPU: per pair, (µs of ``first``, µs of ``second``). The two calls
    of a pair see the same moment of a drifting machine, which blocks of calls taking turns
    do not (those spread by about ±20 µs a request here between repeats; pairs by 1-3)."""
    clock, timed = time.process_time_ns, []
    for number in range(pairs):
        calls = (first, second) if number % 2 == 0 else (second, first)
        began = clock()
        calls[0]()
        middle = clock()
        calls[1]()
        ended = clock()
        times = ((middle - began) / 1000, (ended - middle) / 1000)
        timed.append(times if number % 2 == 0 else times[::-1])
    return timed


# ---- load ----

@dataclass
class LoadResult:
    """A phase of load: how many requests answered, in how long, how fast each."""

    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, of the 200 answers
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    server_cpu: float = 0.0  # seconds of CPU the server's workers used in the phase

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def errors(self) -> int:
        return self.requests - self.statuses.get(200, 0)

    @property
    def rps(self) -> float:
        return self.statuses.get(200, 0) / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        return percentile(self.latencies, fraction)

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu / self.requests if self.requests else 0.0


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.5 for p50, 0.99 for p99)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


Pick = Callable[[random.Random], tuple[str, dict[str, str]]]


def run_load(server: BenchServer, pick: Pick, seconds: float, connections: int,
             check: Callable[[dict], str | None] | None = None, seed: int = 0,
             each: int | None = None) -> LoadResult:
    """``connections`` client threads, each on its own keep-alive connection, send GETs chosen
    by ``pick(rng)`` back to back for ``seconds`` (or, given ``each``, until each has sent that
    many); the first answer of each thread is checked with ``check(body)`` (a problem as a
    string, or None)."""
    start_barrier = threading.Barrier(connections + 1)
    result = LoadResult(seconds=seconds)
    lock = threading.Lock()
    deadline = [0.0]

    def client(number: int) -> None:
        rng = random.Random(seed * 1000 + number)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        latencies, statuses, problems, checked = [], Counter(), [], check is None
        start_barrier.wait()
        try:
            for _sent in itertools.count() if each is None else range(each):
                began = time.perf_counter()
                if began >= deadline[0] or STOP.is_set():
                    break
                path, headers = pick(rng)
                try:
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                except (OSError, http.client.HTTPException) as exc:
                    statuses["connection error"] += 1
                    problems.append(f"{type(exc).__name__}: {exc}")
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
                    continue
                ended = time.perf_counter()
                statuses[response.status] += 1
                if response.status == 200:
                    latencies.append(ended - began)
                    if not checked:
                        checked = True
                        problem = check(json.loads(body))
                        if problem:
                            problems.append(problem)
                elif len(problems) < 5:
                    problems.append(f"{response.status} {body[:200]!r}")
                if response.will_close:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        finally:
            conn.close()
            with lock:
                result.latencies += latencies
                result.statuses.update(statuses)
                result.problems += problems[:5]

    threads = [threading.Thread(target=client, args=(n,), daemon=True)
               for n in range(connections)]
    for thread in threads:
        thread.start()
    cpu_before = server.cpu_seconds()
    began = time.perf_counter()
    deadline[0] = began + seconds
    start_barrier.wait()
    for thread in threads:
        thread.join()
    check_stop()
    result.seconds = time.perf_counter() - began
    result.server_cpu = server.cpu_seconds() - cpu_before
    return result


# ---- the machine and printing ----

def machine(run: BenchRun | None = None) -> dict[str, str]:
    """CPU model and cores, Python, MariaDB, and the load average when measured."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    description = {"cpu": model, "cores": str(os.cpu_count()),
                   "python": platform.python_version(),
                   "kernel": platform.release(),
                   "load average (1, 5, 15 min)": " ".join(
                       f"{value:.2f}" for value in os.getloadavg())}
    if run is not None:
        with run.admin() as conn, conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            description["mariadb"] = cur.fetchone()[0]
    return description


def print_machine(run: BenchRun | None = None) -> None:
    print(f"run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, prefix "
          f"{run.prefix if run else '-'}")
    for key, value in machine(run).items():
        print(f"  {key}: {value}")
    sys.stdout.flush()


def table(headers: list[str], rows: list[list], title: str | None = None) -> None:
    """Print rows as a Markdown table (pasted as is into docs/benchmarks.md)."""
    if title:
        print(f"\n{title}\n")
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(headers[i]), *(len(row[i]) for row in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
    sys.stdout.flush()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


if __name__ == "__main__":
    if sys.argv[1:2] != ["serve"]:
        sys.exit("usage: python -m bench.common serve [--host H] [--port P] [--workers N] "
                 "[--threads T]  (the benchmarks start it themselves)")
    _serve_main(sys.argv[2:])
