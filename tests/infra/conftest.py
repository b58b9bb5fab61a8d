"""Fixtures of the infra tests: stack config and Pulumi mocks that never outlive their test."""

from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest

from tests.infra.program import (
    MINIMAL_SECRETS,
    PROJECT,
    RecordingMocks,
    mocked_engine,
    set_stack_config,
)


@pytest.fixture
def stack_config() -> Iterator[Callable[..., pulumi.Config]]:
    """Set config for this test (keys without the project prefix) and get the project's
    ``pulumi.Config``; the config is emptied after the test."""
    def configure(config: dict[str, Any], secret_keys=MINIMAL_SECRETS) -> pulumi.Config:
        set_stack_config(config, secret_keys)
        return pulumi.Config(PROJECT)

    yield configure
    pulumi.runtime.set_all_config({}, [])


@pytest.fixture
def mocks() -> Iterator[RecordingMocks]:
    """Pulumi's mocks in place of the engine for one ``@pulumi.runtime.test`` test."""
    with mocked_engine() as (recording, _):
        yield recording
