"""Prometheus metrics at GET /metrics: requests by route and status, latency, tenant engines
cached, connections open, evictions, provisioning outcomes.

Each app has its own registry (tests build many apps in one process). Under `finvera serve`,
with several gunicorn workers, PROMETHEUS_MULTIPROC_DIR is set before anything imports
prometheus_client, every worker writes its figures there, and /metrics adds them up, whichever
worker answers.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("finvera_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("finvera_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["route"],
                                 registry=self.registry)
        self.engines = Gauge("finvera_tenant_engines_cached", "Tenant engines cached",
                             multiprocess_mode="livesum", registry=self.registry)
        self.connections = Gauge("finvera_tenant_connections_open",
                                 "Connections open to tenant databases",
                                 multiprocess_mode="livesum", registry=self.registry)
        self.evictions = Counter("finvera_tenant_connection_evictions",
                                 "Idle tenant connections closed to make room",
                                 registry=self.registry)
        self.provisioning = Counter("finvera_provisioning", "Tenant sign-ups by outcome",
                                    ["outcome"], registry=self.registry)
        self._evictions_seen = 0

    def observe(self, route: str, method: str, status: int, seconds: float,
                connections) -> None:
        """Count one answered request and refresh the connection figures of this process."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)
        self.engines.set(connections.cached_engines)
        self.connections.set(connections.open_connections)
        new_evictions = connections.evictions - self._evictions_seen
        if new_evictions > 0:
            self.evictions.inc(new_evictions)
            self._evictions_seen = connections.evictions

    def exposition(self) -> bytes:
        if os.environ.get(MULTIPROCESS_VARIABLE):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


def metrics() -> Metrics:
    return current_app.extensions["finvera_metrics"]


def init_app(app: Flask) -> None:
    app.extensions["finvera_metrics"] = Metrics()

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics().observe(route, request.method, response.status_code,
                          time.perf_counter() - g.get("started", time.perf_counter()),
                          current_app.extensions["finvera"].connections)
        return response

    app.add_url_rule("/metrics", "metrics", lambda: Response(
        metrics().exposition(), content_type=CONTENT_TYPE_LATEST))
