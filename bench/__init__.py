"""Benchmarks of the platform on the real MariaDB: ``python -m bench.<name>``.

Each script measures one thing against a baseline or a floor measured in the same run (the
figures are ratios, because the machine is shared and noisy), prints its figures, and cleans up
every database, DB user and process it made. ``docs/benchmarks.md`` keeps the latest output.

- ``bench.routing``: a routed tenant read (GET /api/ledgers) against the same query without
  tenancy, over HTTP through gunicorn.
- ``bench.signup``: POST /api/admin/tenants to a first answered request, against raw DDL.
- ``bench.connections``: MariaDB connections and worker memory with many tenants behind a bound.
- ``bench.fleet``: the fleet migration (``finvera migrate --tier tenant --all``) against raw DDL.
- ``bench.scaling``: one MariaDB server (a private one) filling up with tenants; docs/scaling.md.

``bench.common`` holds what they share (the run's databases and clean-up, the server, the
load generator, tenant cloning, the machine's description).
"""
