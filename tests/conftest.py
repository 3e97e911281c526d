"""Shared fixtures: a real mosquitto per test, and a guard against leaked threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from simulators.backend.store import BackendStore
from simulators.harness import Mosquitto
from tests.contract_watch import ContractWatch
from tests.helpers import running_backend

# No deadline: CI machines are noisy, and timing is what benchmarks/ measure, not tests.
settings.register_profile("santebus", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("santebus")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--hil", action="store_true", help="run hardware-in-the-loop tests")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--hil"):
        return
    skip = pytest.mark.skip(reason="needs real hardware: run with --hil")
    for item in items:
        if "hil" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A real mosquitto on a free loopback port (persistence in the test's tmp dir)."""
    mosquitto = Mosquitto(tmp_path / "broker").start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def backend(broker: Mosquitto, tmp_path: Path) -> Iterator[BackendStore]:
    """The reference backend on ``broker``, subscribed; yields its store."""
    store = BackendStore(tmp_path / "backend.sqlite")
    with running_backend(broker.port, store, client_id="backend-test"):
        yield store
    store.close()


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves threads behind (a paho loop not stopped, say)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
        if not leaked or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not leaked, f"threads left running: {[t.name for t in leaked]}"


@pytest.fixture(autouse=True)
def published_messages_honour_the_contract(request: pytest.FixtureRequest) -> Iterator[None]:
    """Whatever any test publishes on any broker it starts is checked against
    docs/asyncapi.yaml (and FHIR R4): tests/contract_watch.py."""
    watch = ContractWatch()
    Mosquitto.observers.append(watch)
    try:
        yield
    finally:
        Mosquitto.observers.remove(watch)
        watch.close()
    found = watch.violations()
    _WATCHED["messages"] += len(watch.seen)
    _WATCHED["brokers"] += watch.brokers
    _WATCHED["tests"] += 1 if watch.brokers else 0
    marker = request.node.get_closest_marker("publishes_invalid")
    if marker is None:
        assert found == [], f"published messages break the contract: {found[:5]}"
    else:
        match = marker.kwargs["match"]
        assert found, f"the test says it publishes an invalid payload ({match!r}); none seen"
        assert all(match in v for v in found), f"unexpected violations: {found[:5]}"


_WATCHED = {"messages": 0, "brokers": 0, "tests": 0}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    w = _WATCHED
    terminalreporter.write_line(
        f"contract watch: {w['messages']} published messages checked against docs/asyncapi.yaml"
        f" (Observations also as FHIR R4), {w['brokers']} broker starts in {w['tests']} tests"
    )
