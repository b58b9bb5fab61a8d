"""Fuzzing: schemathesis against /api/openapi.json, and Hypothesis on the validators.

Schemathesis generates valid (positive) and invalid (negative) requests for every operation of
the document, sent through the WSGI app with real credentials: a super admin's token on
/api/admin, a tenant admin's token and X-Tenant-ID on the tenant API. Tenant operations run
first (admin ones may suspend or delete tenants); state the fuzzer breaks on purpose (our
admin deactivated, our tenant suspended, our user demoted) is put back after each request.
A deterministic probe adds, per operation, the answers without a token, with too small a role,
for an unknown tenant and for a suspended one.

Two checks: no 500 (strict), and every answer documented by the OpenAPI document (status
code, content type, body schema); what is not is printed, operation by operation.

The Hypothesis half covers what tests/accounting/test_rules.py does not: subdomains (and the
database names made from them), Host headers and X-Tenant-ID through routing, and amounts
through the HTTP field types.
"""

from __future__ import annotations

import logging
import re
import string
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from api.accounting.rules import MAX_RUPEES, format_paise
from api.config import TENANT_PREFIX
from api.models.main import AdminUser
from api.models.master import TenantMaster
from api.models.tenant import AccountGroup, User
from api.tenancy.backends import IDENTIFIER, BackendError, checked_identifier
from api.tenancy.routing import host_label
from api.tenancy.subdomains import (
    RESERVED,
    SUBDOMAIN,
    SubdomainError,
    check_subdomain,
    database_name,
)
from tests.reliability.conftest import build_platform, environment_for, figures, scaled

# What may break the run's own identities (our admins, our tenant, its admin user).
MUTATES_IDENTITIES = ("/api/admin/users/{id}", "/api/admin/tenants/{id}", "/api/users/{id}")
# Derandomized: the default run tries the same examples every time (no flaky CI); a bigger
# FINVERA_RELIABILITY_SCALE tries more of them.
HTTP_SETTINGS = settings(deadline=None, database=None, max_examples=scaled(60, 10),
                         derandomize=True, suppress_health_check=list(HealthCheck))


# ---- schemathesis ----

@dataclass
class FuzzRun:
    backend: str
    documented: dict[str, set[str]]  # operation -> documented status codes
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    undocumented: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    mismatches: list[str] = field(default_factory=list)  # content type or body schema
    server_errors: list[str] = field(default_factory=list)
    not_sent: Counter = field(default_factory=Counter)
    cases: int = 0
    seconds: float = 0.0


class Crashes(logging.Handler):
    """Collects the exceptions the app logs as unhandled (api.errors), request by request."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(record.exc_info[1])


class Fuzzer:
    def __init__(self, platform, examples: int, derandomize: bool) -> None:
        import schemathesis
        from schemathesis.checks import not_a_server_error
        from schemathesis.core.failures import FailureGroup
        from schemathesis.specs.openapi import checks

        self.platform, self.examples, self.derandomize = platform, examples, derandomize
        self.failure_group = FailureGroup
        self.checks = [not_a_server_error, checks.status_code_conformance,
                       checks.content_type_conformance, checks.response_schema_conformance]
        self.schema = schemathesis.openapi.from_wsgi("/api/openapi.json", platform.app)
        document = platform.app.api_doc
        self.with_body = {f"{method.upper()} {path}" for path, operations in
                          document["paths"].items() for method, operation in operations.items()
                          if "requestBody" in operation}
        self.run = FuzzRun(platform.dbs.backend.name, {
            f"{method.upper()} {path}": set(operation.get("responses", {}))
            for path, operations in document["paths"].items()
            for method, operation in operations.items()})
        self.tenant = platform.add_tenant("fuzzco")
        self.paused = platform.add_tenant("pausedco")
        self.viewer = self._viewer_headers()
        self.crashes = Crashes()
        with Session(platform.dbs.main_engine) as session:
            self.admins = {a.id: a.role for a in session.scalars(sa.select(AdminUser))}
        with Session(platform.dbs.master_engine) as session:
            self.limit = session.get(TenantMaster, self.tenant.id).storage_limit_mb
        platform.app.test_client().patch(
            f"/api/admin/tenants/{self.paused.id}", json={"status": "suspended"},
            headers=platform.admin["admin"])

    def _viewer_headers(self) -> dict[str, str]:
        with self.platform.tenant_session(self.tenant.subdomain) as session:
            viewer = User(email="viewer@fuzzco.in", role="viewer", password_hash="unused")
            session.add(viewer)
            session.commit()
            return self.platform.tenant_headers(self.tenant.id, self.tenant.db_name,
                                                self.tenant.subdomain, viewer.id)

    def auth_for(self, operation) -> dict[str, str]:
        if operation.path == "/api/admin/auth/login" or not operation.path.startswith("/api/"):
            return {}
        if operation.path.startswith("/api/admin"):
            return self.platform.admin["super_admin"]
        if operation.path == "/api/auth/login":
            return {"X-Tenant-ID": self.tenant.subdomain}
        return self.tenant.headers

    def restore(self) -> None:
        """Undo what the fuzzer may have done to the identities the run depends on."""
        dbs = self.platform.dbs
        with Session(dbs.main_engine) as session:
            for admin_id, role in self.admins.items():
                session.execute(sa.update(AdminUser).where(AdminUser.id == admin_id).values(
                    role=role, is_active=True))
            session.commit()
        with Session(dbs.master_engine) as session:
            session.execute(sa.update(TenantMaster).where(
                TenantMaster.id == self.tenant.id).values(status="active",
                                                          storage_limit_mb=self.limit))
            session.commit()
        dbs.directory.forget(self.tenant.id)
        dbs.storage.forget(self.tenant.db_name)
        with self.platform.tenant_session(self.tenant.subdomain) as session:
            session.execute(sa.update(User).where(User.email == "admin@fuzzco.in").values(
                role="admin", is_active=True))
            session.execute(sa.update(User).where(User.email == "viewer@fuzzco.in").values(
                role="viewer", is_active=True))
            session.commit()

    def send(self, case, headers: dict[str, str]) -> None:
        label = f"{case.operation.method.upper()} {case.operation.path}"
        case.headers = {**(case.headers or {}), **headers}
        self.crashes.seen.clear()
        try:
            response = case.call()
        except Exception as exc:  # a request the transport cannot send (e.g. bad header)
            self.run.not_sent[f"{label}: {type(exc).__name__}"] += 1
            return
        self.run.cases += 1
        self.run.statuses[label][response.status_code] += 1
        if response.status_code >= 500 and response.status_code != 503:
            crash = self.crashes.seen[-1] if self.crashes.seen else None
            sent = {"path": case.path_parameters, "query": case.query,
                    "body": case.body if isinstance(case.body, dict | list) else None}
            self.run.server_errors.append(f"{label} -> {response.status_code}: {crash!r}; "
                                          f"sent {str(sent)[:300]}")
        try:
            case.validate_response(response, checks=self.checks)
        except self.failure_group as group:
            for failure in group.exceptions:
                kind = type(failure).__name__
                if kind == "UndefinedStatusCode":
                    self.run.undocumented[label].add(response.status_code)
                elif kind != "ServerError":
                    self.run.mismatches.append(f"{label} {response.status_code} {kind}: "
                                               f"{failure.title}")
        if case.operation.method.upper() in ("PATCH", "DELETE") and \
                case.operation.path in MUTATES_IDENTITIES and response.status_code < 300:
            self.restore()

    def fuzz(self, operation) -> None:
        """``examples`` requests, valid and invalid ones mixed (one Hypothesis run)."""
        from hypothesis.errors import Unsatisfiable
        from schemathesis import GenerationMode

        headers = self.auth_for(operation)
        strategies = [operation.as_strategy(generation_mode=mode)
                      for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]

        @settings(max_examples=self.examples, deadline=None, database=None,
                  derandomize=self.derandomize, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(case=st.one_of(strategies))
        def each(case):
            self.send(case, headers)

        try:
            each()
        except Unsatisfiable:  # nothing (more) to generate for an operation without inputs
            self.run.not_sent[f"{operation.label}: nothing to generate"] += 1

    def probe(self, operation) -> None:
        """Deterministic requests: no token, a too-small role, unknown and suspended tenants."""
        parameters = {"id": 1} if "{id}" in operation.path else None
        body = {} if f"{operation.method.upper()} {operation.path}" in self.with_body else None
        variants = []
        if operation.path.endswith("/login"):  # a well-formed login that is wrong: 401
            headers = {"X-Tenant-ID": self.tenant.subdomain} if operation.path == \
                "/api/auth/login" else {}
            self.send(operation.Case(body={"email": "nobody@fuzzco.in", "password": "wrong"}),
                      headers)
        elif operation.path.startswith("/api/admin"):
            variants += [{}, self.platform.admin["support"]]
        elif operation.path.startswith("/api/"):
            variants += [{"X-Tenant-ID": self.tenant.subdomain}, self.viewer,
                         {**self.tenant.headers, "X-Tenant-ID": "nosuchco"},
                         {**self.tenant.headers, "X-Tenant-ID": self.paused.subdomain}]
        for headers in variants:
            for sent_body in ([body, None] if body is not None else [None]):
                case = operation.Case(path_parameters=parameters,
                                      **({"body": sent_body} if sent_body is not None else {}))
                self.send(case, headers)

    def go(self) -> FuzzRun:
        started = time.monotonic()
        operations = [result.ok() for result in self.schema.get_all_operations()]
        tenant_first = sorted(operations, key=lambda op: op.path.startswith("/api/admin"))
        errors_logger = logging.getLogger("api.errors")
        errors_logger.addHandler(self.crashes)
        try:
            for operation in tenant_first:
                self.fuzz(operation)
                self.probe(operation)
        finally:
            errors_logger.removeHandler(self.crashes)
        self.run.seconds = time.monotonic() - started
        return self.run


def summarize(run: FuzzRun, examples: int) -> None:
    by_class = Counter(f"{status // 100}xx" for counts in run.statuses.values()
                       for status, n in counts.items() for _ in range(n))
    figures(f"schemathesis ({run.backend}, WSGI)", operations=len(run.statuses),
            examples_per_operation=examples, requests=run.cases,
            answers=dict(sorted(by_class.items())), server_errors=len(run.server_errors),
            not_sent=sum(run.not_sent.values()),
            operations_with_undocumented_status=len(run.undocumented),
            body_or_content_type_mismatches=len(run.mismatches),
            seconds=round(run.seconds, 1))


def undocumented_table(run: FuzzRun) -> str:
    return "\n".join(f"  {label}: documents {', '.join(sorted(run.documented[label]))}; "
                     f"also answers {', '.join(map(str, sorted(codes)))}"
                     for label, codes in sorted(run.undocumented.items()))


@pytest.fixture(scope="module")
def sqlite_fuzz(request, tmp_path_factory):
    pytest.importorskip("schemathesis", reason="schemathesis is a test dependency: "
                        "pip install schemathesis")
    platform = build_platform(environment_for("sqlite", request,
                                              tmp_path_factory.mktemp("fuzz")))
    examples = scaled(4, minimum=2)
    try:
        run = Fuzzer(platform, examples, derandomize=True).go()
    finally:
        platform.close()
    summarize(run, examples)
    return run


def test_fuzzing_every_operation_finds_no_server_error(sqlite_fuzz):
    assert sqlite_fuzz.cases > 0 and len(sqlite_fuzz.statuses) == len(sqlite_fuzz.documented)
    assert sqlite_fuzz.server_errors == []


def assert_documented(run: FuzzRun) -> None:
    """Every status, content type and body the run saw is the one the document declares."""
    if run.undocumented:
        print(f"\n[reliability] undocumented status codes ({len(run.undocumented)} "
              f"operations):\n{undocumented_table(run)}")
    if run.mismatches:
        print("\n[reliability] body or content-type mismatches:\n  " +
              "\n  ".join(sorted(set(run.mismatches))))
    assert run.mismatches == []
    assert dict(run.undocumented) == {}


def test_every_answer_is_documented_by_the_openapi_document(sqlite_fuzz):
    assert_documented(sqlite_fuzz)


@pytest.mark.reliability
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def test_long_fuzzing_finds_no_server_error(request, tmp_path, kind):
    pytest.importorskip("schemathesis")
    platform = build_platform(environment_for(kind, request, tmp_path))
    examples = scaled(100, minimum=2)
    try:
        run = Fuzzer(platform, examples, derandomize=False).go()
    finally:
        platform.close()
    summarize(run, examples)
    assert run.server_errors == []
    assert_documented(run)


# ---- amounts through the HTTP field types ----

@pytest.fixture(scope="module")
def books(request, tmp_path_factory):
    """A tenant on SQLite for the HTTP properties (module scope: Hypothesis runs many)."""
    platform = build_platform(environment_for("sqlite", request,
                                              tmp_path_factory.mktemp("props")))
    tenant = platform.add_tenant("propco")
    with platform.tenant_session(tenant.subdomain) as session:
        group = session.scalar(sa.select(AccountGroup.id).where(
            AccountGroup.code == "cash_in_hand"))
    yield platform, tenant, group
    platform.close()


_names = iter(range(10**9))


def post_ledger(books, **fields):
    platform, tenant, group = books
    return platform.app.test_client().post("/api/ledgers", headers=tenant.headers, json={
        "name": f"Ledger {next(_names)}", "account_group_id": group, **fields})


@HTTP_SETTINGS
@given(paise=st.integers(0, MAX_RUPEES * 100), style=st.sampled_from(["string", "number"]))
def test_any_amount_in_range_goes_in_and_comes_back_exact_to_the_paisa(books, paise, style):
    text = format_paise(paise)
    sent = text if style == "string" else float(text) if paise < 2**53 // 100 else text
    if isinstance(sent, float) and format_paise(round(sent * 100)) != text:
        sent = text  # a float that does not hold the amount exactly is not a fair JSON number
    response = post_ledger(books, opening_balance=sent)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["data"]["ledger"]["opening_balance"] == text


@HTTP_SETTINGS
@given(text=st.text(alphabet="0123456789.-+eE_, ₹", max_size=24))
def test_amount_text_is_201_or_a_400_naming_the_field(books, text):
    response = post_ledger(books, opening_balance=text)
    assert response.status_code in (201, 400), (text, response.get_json())
    if response.status_code == 400:
        assert "opening_balance" in response.get_json()["error"]["fields"]


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) |
                           st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=6)


@HTTP_SETTINGS
@example(value=None)
@example(value=True)
@example(value=[])
@given(value=JSON_VALUES)
def test_amount_fields_of_a_wrong_json_type_are_400(books, value):
    response = post_ledger(books, opening_balance=value)
    assert response.status_code in (201, 400), (value, response.status_code)


# Beyond MariaDB's INT (the first id refused) and beyond 64 bits (SQLite cannot bind it).
OUT_OF_RANGE_IDS = (2**31, 2**70)


@pytest.mark.parametrize("huge", OUT_OF_RANGE_IDS)
def test_ids_out_of_range_are_a_400_naming_the_field(platform, huge):
    """Every integer query parameter and the body ids: 400 validation_error on that field."""
    tenant = platform.add_tenant("hugeco")
    client = platform.app.test_client()
    admin = platform.admin["super_admin"]
    answers = {}  # where -> (status, code, the field the answer names)
    for path, operations in platform.app.api_doc["paths"].items():
        if "{" in path or "get" not in operations:
            continue
        headers = admin if path.startswith("/api/admin") else tenant.headers
        for parameter in operations["get"].get("parameters", []):
            schema = parameter.get("schema", {})
            kinds = {schema.get("type")} | {s.get("type") for s in schema.get("anyOf", [])}
            if parameter["in"] == "query" and "integer" in kinds and parameter["name"] not in (
                    "limit", "offset"):
                response = client.get(f"{path}?{parameter['name']}={huge}", headers=headers)
                answers[f"GET {path}?{parameter['name']}="] = (response, parameter["name"])
    for path, body, field_name in (
            ("/api/account-groups", {"name": "Huge", "parent_id": huge}, "parent_id"),
            ("/api/ledgers", {"name": "Huge", "account_group_id": huge}, "account_group_id"),
            ("/api/vouchers", {"voucher_type": "Journal", "date": "2026-11-25",
                               "entries": [{"ledger_id": huge, "type": "Dr", "amount": "1"},
                                           {"ledger_id": 1, "type": "Cr", "amount": "1"}]},
             "entries.0.ledger_id"),
            ("/api/tds-details", {"voucher_id": huge, "section": "194C", "rate": "1",
                                  "base_amount": "100", "deductee_pan": "ABCDE1234F",
                                  "deducted_on": "2026-11-25"}, "voucher_id")):
        answers[f"POST {path}"] = (client.post(path, json=body, headers=tenant.headers),
                                   field_name)
    wrong = sorted(where for where, (response, name) in answers.items()
                   if response.status_code != 400
                   or response.json["error"]["code"] != "validation_error"
                   or name not in response.json["error"].get("fields", {}))
    figures(f"ids out of range ({platform.dbs.backend.name}, {huge})", places=len(answers),
            answered_400_naming_the_field=len(answers) - len(wrong), other=wrong)
    assert len(answers) >= 20 and wrong == []


# ---- subdomains and the database names made from them ----

VALID_SUBDOMAINS = st.from_regex(SUBDOMAIN, fullmatch=True).filter(
    lambda s: "--" not in s and s not in RESERVED)


@settings(max_examples=scaled(500, 50), database=None, derandomize=True)
@given(value=st.text(max_size=40) | st.from_regex(r"[a-z][a-z0-9-]{0,32}", fullmatch=True))
def test_check_subdomain_accepts_exactly_the_rule(value):
    try:
        accepted = check_subdomain(value)
    except SubdomainError:
        assert not (SUBDOMAIN.match(value) and "--" not in value and value not in RESERVED
                    and 3 <= len(value) <= 30)
        return
    assert accepted == value and SUBDOMAIN.match(value) and 3 <= len(value) <= 30
    assert "--" not in value and value not in RESERVED and value == value.lower()


@settings(max_examples=scaled(300, 50), database=None, derandomize=True)
@given(first=VALID_SUBDOMAINS, second=VALID_SUBDOMAINS, ms=st.integers(0, 10**13 - 1))
def test_database_names_are_safe_identifiers_and_never_shared(first, second, ms):
    name = database_name("finvera_tenant_", first, ms)
    assert checked_identifier(name) == name
    if first != second:
        assert name != database_name("finvera_tenant_", second, ms)


@settings(max_examples=scaled(200, 50), database=None, derandomize=True)
@example(prefix="a" * 20, subdomain="a" * 30)  # the longest of each that config accepts
@given(prefix=st.from_regex(TENANT_PREFIX, fullmatch=True), subdomain=VALID_SUBDOMAINS)
def test_every_accepted_prefix_and_subdomain_make_a_valid_database_name(prefix, subdomain):
    name = database_name(prefix, subdomain, 1_800_000_000_000)  # a 13-digit unix ms
    try:
        checked_identifier(name)
    except BackendError:
        pytest.fail(f"{name!r} ({len(name)} characters) is not a valid database name")


# ---- Host headers and routing ----

@settings(max_examples=scaled(1000, 100), database=None, derandomize=True)
@given(host=st.text(max_size=60) | st.builds(
    lambda a, b: f"{a}.{b}", st.text(max_size=20), st.sampled_from(["localhost", "finvera.in"])),
    base=st.sampled_from(["localhost", "finvera.in"]))
def test_host_label_never_crashes_and_never_gives_a_dotted_label(host, base):
    label = host_label(host, base)
    assert label is None or (label and "." not in label and label == label.lower())


@settings(max_examples=scaled(300, 50), database=None, derandomize=True)
@given(subdomain=VALID_SUBDOMAINS, port=st.none() | st.integers(1, 65535),
       flips=st.lists(st.booleans(), min_size=30, max_size=30), trailing_dot=st.booleans(),
       base=st.sampled_from(["localhost", "finvera.in", "books.example.co.in"]))
def test_host_label_ignores_port_and_letter_case(subdomain, port, flips, trailing_dot, base):
    mixed = "".join(c.upper() if flip else c for c, flip in zip(subdomain, flips, strict=False))
    host = f"{mixed}.{base.upper() if flips[0] else base}{'.' if trailing_dot else ''}"
    host += f":{port}" if port is not None else ""
    assert host_label(host, base) == subdomain
    assert host_label(f"x.{host}", base) is None  # a deeper name is no tenant's
    assert host_label(f"{subdomain}.evil-{base}", base) is None


HEADER_TEXT = st.text(alphabet=string.printable.replace("\r", "").replace("\n", "")
                      .replace("\x0b", "").replace("\x0c", ""), max_size=40)


@HTTP_SETTINGS
@given(host=HEADER_TEXT, tenant_id=st.none() | HEADER_TEXT)
def test_any_host_or_tenant_header_is_routed_or_refused_never_a_500(books, host, tenant_id):
    platform, tenant, _group = books
    headers = {"Authorization": tenant.headers["Authorization"], "Host": host or "x"}
    if tenant_id is not None:
        headers["X-Tenant-ID"] = tenant_id
    response = platform.app.test_client().get("/api/ledgers", headers=headers)
    body = response.get_json()
    assert response.status_code in (200, 400, 404), (host, tenant_id, response.status_code)
    names = {tenant_id.strip().lower() if tenant_id and tenant_id.strip() else None,
             host_label(host or "x", platform.settings.base_domain)} - {None}
    if response.status_code == 200:  # only when what was named is this tenant, and nothing else
        assert names <= {tenant.subdomain, str(tenant.id)} and names, (host, tenant_id)
        assert [ledger["name"] for ledger in body["data"]["ledgers"]] == [tenant.marker]
    else:  # a routing refusal, or Werkzeug's for a Host it cannot parse (e.g. ".")
        assert re.fullmatch(r"tenant_\w+|bad_request", body["error"]["code"]), body


def test_the_identifier_rule_is_the_one_sql_relies_on():
    """Names accepted by checked_identifier contain nothing SQL could read as syntax."""
    for bad in ("a`b", "a'b", "a;b", "a b", "../x", "a-b", "", "x" * 65, "a\x00b", "é"):
        with pytest.raises(BackendError):
            checked_identifier(bad)
    for good in ("finvera_tenant_acme_1800000000000", "A_1", "x" * 64):
        assert checked_identifier(good) == good and IDENTIFIER.match(good)
