"""GET /metrics: Prometheus text with requests, latency, tenant connections and sign-ups; under
`finvera serve` the figures of every worker add up."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from tests.test_cli import free_port, get


def sample(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text, by metric name and exact labels."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if match and match[1] == name:
            found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
            if found == wanted:
                return float(match[3])
    raise AssertionError(f"no sample {name}{{{wanted}}} in:\n{text}")


def test_requests_connections_and_sign_ups_are_counted(client, admin_headers):
    for _ in range(3):
        client.get("/healthz")
    client.get("/no/such/route")
    client.post("/api/admin/tenants", headers=admin_headers["admin"], json={
        "company_name": "Acme", "subdomain": "acme", "email": "o@acme.in"})
    client.post("/api/admin/tenants", headers=admin_headers["admin"], json={
        "company_name": "Acme", "subdomain": "acme", "email": "o@acme.in"})
    response = client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    text = response.get_data(as_text=True)
    assert sample(text, "finvera_http_requests_total", route="/healthz", method="GET",
                  status="200") == 3
    assert sample(text, "finvera_http_requests_total", route="unmatched", method="GET",
                  status="404") == 1
    assert sample(text, "finvera_http_request_duration_seconds_count", route="/healthz") == 3
    assert sample(text, "finvera_provisioning_total", outcome="created") == 1
    assert sample(text, "finvera_provisioning_total", outcome="conflict") == 1
    assert sample(text, "finvera_tenant_connections_open") == 0  # platform calls only


def test_figures_of_every_worker_add_up_under_serve(environment):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if key != "PROMETHEUS_MULTIPROC_DIR"}
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port), "--workers", "2",
         "--threads", "2"], env={**env, **environment},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/healthz")
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        for _ in range(39):  # 40 in all, spread over both workers by the kernel
            get(f"{base}/healthz")
        with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
            text = response.read().decode()
        assert sample(text, "finvera_http_requests_total", route="/healthz", method="GET",
                      status="200") == 40
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
