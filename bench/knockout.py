"""What each piece of the routed read costs: knock it out, in-process, and time the difference.

    python -m bench.knockout [--requests 4000] [--repeat 2] [PIECE ...]

What is measured: GET /api/ledgers?limit=20 of one tenant through the Flask test client
(no HTTP, no gunicorn), as ``bench.routing --profile`` measures it, against the same request
with one piece of the platform's flow served a fixed result taken from a real request first:

- ``tenant``: ``load_tenant`` (the header, the Host, the directory's cached entry);
- ``token``: the bearer token's check (its verification cached);
- ``standing``: the user's standing (active, role; cached);
- ``validation``: the query model's validation by the view;
- ``view``: the tenant's view of the shared pool (``TenantConnections.engine``);
- ``liveness``: the checkout's look at the pooled connection's socket (``_closed_by_server``);
- ``shape``: the plain floor asked as the routed read is asked, with its bearer token,
  X-Tenant-ID and query string (it reads none of them), against the floor asked bare: what
  parsing a routed request's shape costs the framework;
- ``all``: the routed read against the plain floor (``bench.routing``'s baseline): the whole
  gap, that the pieces above are parts of.

Against what: the unchanged read, in pairs (``bench.common.paired_cpu``: the two requests
one after the other, which goes first alternating, each timed in this process's CPU), and
the median over the pairs of what the knocked-out one took less. Each piece is measured
``--repeat`` times: the spread between repeats is the measurement's own.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable

from bench.common import (
    BenchRun,
    create_tenants,
    paired_cpu,
    platform_databases,
    print_machine,
    table,
    tenant_headers,
)
from bench.routing import BASELINES, LEDGERS, ROUTED_PATH

PIECES = ("tenant", "token", "standing", "validation", "view", "liveness", "shape", "all")


class Knockouts:
    """The routed read's pieces, each replaceable by its fixed result while ``active`` names
    it; the app runs unchanged otherwise."""

    def __init__(self, app, headers: dict[str, str]) -> None:
        from flask import g

        import api.tenancy.backends as backends
        from api import auth, tenant_request
        from api.accounting.chart import LedgerQuery

        self.active: str | None = None
        with app.test_request_context(ROUTED_PATH, headers=headers):
            tenant_request.load_tenant()
            tenant, claims = g.tenant, auth._bearer_claims()
            standing = auth._standing(tenant, claims.user_id)
        connections = app.extensions["finvera"].connections
        view, query = connections.engine(tenant.target), LedgerQuery(limit=20)

        load_tenant = tenant_request.load_tenant

        def knocked_load_tenant():
            if self.active == "tenant":
                g.tenant = tenant
                return None
            return load_tenant()

        for functions in app.before_request_funcs.values():  # registered on the blueprints
            functions[:] = [knocked_load_tenant if f is load_tenant else f for f in functions]
        self._replace(auth, "_bearer_claims", "token", lambda: claims)
        self._replace(auth, "_standing", "standing", lambda *_: standing)
        self._replace(backends, "_closed_by_server", "liveness", lambda *_: False)
        self._replace(connections, "engine", "view", lambda _target: view)
        validate = LedgerQuery.model_validate
        LedgerQuery.model_validate = classmethod(  # the lean view calls it on the class
            lambda _cls, obj, **kwargs: query if self.active == "validation"
            else validate(obj, **kwargs))

    def _replace(self, owner, name: str, piece: str, fixed: Callable) -> None:
        original = getattr(owner, name)
        setattr(owner, name, lambda *args: fixed(*args) if self.active == piece
                else original(*args))

    def with_out(self, piece: str, call: Callable) -> Callable:
        def knocked():
            self.active = piece
            try:
                return call()
            finally:
                self.active = None
        return knocked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.knockout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pieces", nargs="*", metavar="PIECE",
                        help=f"which to knock out (default: all of {', '.join(PIECES)})")
    parser.add_argument("--requests", type=int, default=4000, help="per piece and repeat")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args(argv)
    unknown = set(args.pieces) - set(PIECES)
    if unknown:
        parser.error(f"no such piece: {', '.join(sorted(unknown))}")

    with BenchRun(MAX_TENANT_CONNECTIONS="10") as run:
        print_machine(run)
        dbs = platform_databases(run)
        tenant, = create_tenants(run, dbs, 1, ledgers=LEDGERS)
        dbs.dispose()
        from api import bench_baseline, create_app

        app = create_app(run.settings())
        bench_baseline.register(app, tenant.db_name)
        headers = tenant_headers(run.settings(), tenant)
        client = app.test_client()
        knockouts = Knockouts(app, headers)

        def routed():
            return client.get(ROUTED_PATH, headers=headers)

        def plain():
            return client.get(BASELINES["plain"])

        def plain_shaped():
            return client.get(BASELINES["plain"] + "?limit=20", headers=headers)

        rows = []
        for piece in args.pieces or PIECES:
            whole, knocked = {"shape": (plain_shaped, plain), "all": (routed, plain)}.get(
                piece, (routed, knockouts.with_out(piece, routed)))
            for call in (whole, knocked):
                for _ in range(300):  # warm: caches, pools, compiled statements
                    assert call().status_code == 200, piece
            saved, whole_cpu = [], []
            for _ in range(args.repeat):
                pairs = paired_cpu(whole, knocked, args.requests)
                saved.append(statistics.median(a - b for a, b in pairs))
                whole_cpu.append(statistics.median(a for a, _ in pairs))
            rows.append([piece, f"{statistics.median(whole_cpu):.0f}",
                         " / ".join(f"{s:+.1f}" for s in saved)])
        table(["piece", "CPU µs/request with it", "µs saved without it, each repeat"], rows,
              f"One piece out at a time ({args.requests} pairs per repeat, median µs per pair; "
              "shape: the plain floor asked with the routed request's headers and query "
              "string, against it asked bare):")
        app.extensions["finvera"].dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
