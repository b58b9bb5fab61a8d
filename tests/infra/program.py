"""Run the real Pulumi program (``infra/__main__.py``) under Pulumi's mocks and keep what it
declared and exported, so tests can check resources, outputs and secrecy as plain data."""

from __future__ import annotations

import json
import runpy
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor, MockResourceArgs

# How Pulumi's RPC layer marks a secret value inside recorded inputs.
from pulumi.runtime.rpc import _special_secret_sig as SECRET_SIG
from pulumi.runtime.rpc import _special_sig_key as SIG_KEY

import infra

MAIN = Path(infra.__file__).with_name("__main__.py")
PROJECT = "finvera"
PROVIDER = "pulumi:providers:mysql"
DATABASE = "mysql:index/database:Database"
USER = "mysql:index/user:User"
GRANT = "mysql:index/grant:Grant"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"

# The smallest valid stack config; the admin password is a secret, as `pulumi config set --secret`
# makes it.
MINIMAL = {"endpoint": "db.example:3306", "adminPassword": "admin-secret"}
MINIMAL_SECRETS = ("adminPassword",)


class RecordingMocks(pulumi.runtime.Mocks):
    """Stand-in for the engine: records each resource and echoes its inputs as its state."""

    def __init__(self) -> None:
        self.resources: list[MockResourceArgs] = []

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            state["result"] = secrets.token_hex(16)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, None]:
        return {}, None


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """``value`` with every secret marker replaced by the value it hides."""
    if is_secret(value):
        return reveal(value["value"])
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def plain_strings(value: Any) -> Iterable[str]:
    """Every string in ``value`` that is not inside a secret."""
    if is_secret(value):
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from plain_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from plain_strings(item)


class RecordingMonitor(MockMonitor):
    """The mocks' monitor, also noting which resources were declared with ``protect``."""

    def __init__(self, mocks: RecordingMocks) -> None:
        super().__init__(mocks)
        self.protected: set[str] = set()

    def RegisterResource(self, request):
        if request.protect:
            self.protected.add(request.name)
        return super().RegisterResource(request)


@dataclass
class Deployment:
    """What one run of the program declared, and its stack outputs."""

    resources: list[MockResourceArgs]
    urns: list[str]
    outputs: dict[str, Any]
    secret_outputs: set[str]
    protected: set[str]

    def of_type(self, typ: str) -> list[MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def inputs(self, typ: str) -> list[dict]:
        """The inputs of each resource of ``typ``, secrets revealed."""
        return [reveal(r.inputs) for r in self.of_type(typ)]

    def endpoint_of(self, resource: MockResourceArgs) -> str:
        """The endpoint of the mysql provider ``resource`` was declared with."""
        provider_id = resource.provider.rsplit("::", 1)[1]
        (provider,) = [p for p in self.of_type(PROVIDER) if f"{p.name}-id" == provider_id]
        return provider.inputs["endpoint"]


@contextmanager
def mocked_engine(config: dict[str, Any] | None = None,
                  secret_keys: Iterable[str] = ()
                  ) -> Iterator[tuple[RecordingMocks, RecordingMonitor]]:
    """Put Pulumi's mocks (and this stack config, keys without the project prefix) in place
    of the engine; everything is reset on the way out so nothing leaks into the next test."""
    mocks = RecordingMocks()
    monitor = RecordingMonitor(mocks)
    pulumi.runtime.reset_options()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False,
                             monitor=monitor)
    set_stack_config(config or {}, secret_keys)
    try:
        yield mocks, monitor
    finally:
        pulumi.runtime.set_all_config({}, [])
        pulumi.runtime.reset_options()


def run_program(config: dict[str, Any], secret_keys: Iterable[str] = ()) -> Deployment:
    """Run ``infra/__main__.py`` with this stack config; return what it declared and exported."""
    exported: dict[str, tuple[Any, bool]] = {}
    with mocked_engine(config, secret_keys) as (mocks, monitor):
        _run_main(exported)
    return Deployment(
        resources=mocks.resources,
        urns=list(monitor.resources),
        outputs={name: value for name, (value, _) in exported.items()},
        secret_outputs={name for name, (_, secret) in exported.items() if secret},
        protected=monitor.protected,
    )


@pulumi.runtime.test
def _run_main(exported: dict[str, tuple[Any, bool]]) -> pulumi.Output:
    """Run the program; put each stack output in ``exported`` as (value, is secret)."""
    runpy.run_path(str(MAIN), run_name="__main__")
    outputs = pulumi.runtime.get_root_resource().outputs
    names = list(outputs)
    values = pulumi.Output.all(*(outputs[name] for name in names))
    secret = pulumi.Output.all(*(pulumi.Output.from_input(outputs[name]).is_secret()
                                 for name in names))
    return pulumi.Output.all(values, secret).apply(
        lambda resolved: exported.update(zip(names, zip(*resolved, strict=True), strict=True)))


def set_stack_config(config: dict[str, Any], secret_keys: Iterable[str] = ()) -> None:
    """Set the stack's config as the engine hands it to a program: strings, objects as JSON."""
    def as_string(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else json.dumps(value)

    pulumi.runtime.set_all_config(
        {f"{PROJECT}:{key}": as_string(value) for key, value in config.items()},
        [f"{PROJECT}:{key}" for key in secret_keys],
    )
