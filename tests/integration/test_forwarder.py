"""Forwarder against a real mosquitto and the reference backend: ack-driven deletion, refusals."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge.events import Events
from edge.outbox import NewRow, Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings, Publisher, PublishOutcome
from edge.visits import VisitBook
from edge.visits.commands import VisitCommands
from simulators.backend.store import BackendStore, export_lines
from simulators.faultproxy import FaultProxy
from simulators.harness import Mosquitto, free_port
from tests.contract_watch import observer_listener
from tests.helpers import (
    BUS,
    TOPICS,
    event_row,
    forwarding,
    obs_row,
    run_until,
    running_backend,
    telemetry_row,
)


def _link_factory(port: int) -> Callable[[], Publisher]:
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="gw-it", tls=False)
    return lambda: PahoPublisher(settings)


def test_rows_are_deleted_only_after_the_backend_stored_them(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([obs_row(n) for n in range(40)])
    forwarder = Forwarder(
        box, _link_factory(broker.port), TOPICS, ForwarderSettings(max_in_flight=7)
    )
    asyncio.run(run_until(forwarder, lambda: not list(box.rows()), timeout=30))
    stored = [json.loads(line) for line in export_lines(tmp_path / "backend.sqlite")]
    assert len(stored) == 40
    assert {o["identifier"][0]["value"] for o in stored} == {
        f"urn:uuid:{obs_row(n).msg_id}" for n in range(40)
    }
    assert forwarder.stats.confirmed == 40


@pytest.mark.publishes_invalid(match="'effectiveDateTime' is a required property")
def test_a_payload_the_backend_refuses_becomes_a_rejected_row(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    good = obs_row(1)
    broken = json.loads(obs_row(2).payload)
    del broken["effectiveDateTime"]
    bad = NewRow(obs_row(2).msg_id, "tono-1", TOPICS.obs("tono-1"), json.dumps(broken).encode())
    box.add([good, bad])
    forwarder = Forwarder(box, _link_factory(broker.port), TOPICS)

    def settled() -> bool:
        return [r.state for r in box.rows()] == ["rejected"]

    asyncio.run(run_until(forwarder, settled, timeout=30))
    (row,) = box.rows()
    assert row.msg_id == bad.msg_id
    assert row.reason == "backend refused: effectiveDateTime missing or malformed"


def test_an_acl_refusal_is_a_rejection_not_a_delivery(tmp_path: Path) -> None:
    """paho reports an ACL-refused QoS 1 publish as published unless the PUBACK reason is read."""
    acl = tmp_path / "acl"
    acl.write_text(
        "".join(f"topic readwrite santebus/v1/{BUS}/{t}\n" for t in ("status", "ack", "events"))
        + f"topic readwrite santebus/v1/{BUS}/telemetry/#\n"
    )
    broker = Mosquitto(tmp_path / "broker")
    broker.conf.write_text(broker.conf.read_text() + f"acl_file {acl}\n")
    broker.start()
    try:
        box = Outbox(tmp_path / "outbox.sqlite")
        refused = obs_row(1)  # obs/ is not in this ACL
        others = [telemetry_row(n) for n in range(5)]
        box.add([refused, *others])
        forwarder = Forwarder(box, _link_factory(broker.port), TOPICS)
        forwarder.events = Events(box, TOPICS, wake=forwarder.wake)

        def settled() -> bool:
            return [r.msg_id for r in box.rows()] == [
                refused.msg_id
            ] and forwarder.stats.rejected == 1

        asyncio.run(run_until(forwarder, settled, timeout=30))
        (row,) = box.rows()  # the other rows flowed, and so did the event (deleted on PUBACK)
        assert (row.state, row.reason) == ("rejected", "broker refused: Not authorized (135)")
        assert forwarder.events.raised == 1
    finally:
        broker.stop()


def test_forwarder_waits_for_a_broker_that_comes_late(tmp_path: Path, backend_port: int) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([obs_row(n) for n in range(5)])
    forwarder = Forwarder(
        box,
        _link_factory(backend_port),
        TOPICS,
        # the backend subscribes after the broker starts, perhaps after our first publishes:
        # those are recovered by the re-send, which this short resend_after exercises
        ForwarderSettings(backoff_min=0.2, backoff_max=0.5, resend_after=2.0),
    )
    late = Mosquitto(tmp_path / "late", port=backend_port)
    store = BackendStore(tmp_path / "b.sqlite")

    async def scenario() -> None:
        async with forwarding(forwarder):
            await asyncio.sleep(1.5)  # several refused connection attempts
            assert forwarder.stats.connects == 0
            late.start()
            with running_backend(backend_port, store, "late-backend"):
                async with asyncio.timeout(30):
                    while list(box.rows()):
                        await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        late.stop()
        store.close()
    assert forwarder.stats.connects >= 1


@pytest.fixture
def backend_port() -> int:
    from simulators.harness import free_port

    return free_port()


def test_an_unreadable_tls_file_is_logged_and_retried_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = MqttSettings(
        host="127.0.0.1", port=8883, client_id="gw", tls=True, ca_file=tmp_path / "missing-ca.pem"
    )
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([obs_row(1)])
    forwarder = Forwarder(
        box,
        lambda: PahoPublisher(settings),
        TOPICS,
        ForwarderSettings(backoff_min=0.1, backoff_max=0.2),
    )
    calls = 0

    def attempts() -> bool:
        nonlocal calls
        calls += 1
        return caplog.text.count("mqtt client cannot be set up") >= 3

    asyncio.run(run_until(forwarder, attempts, timeout=10))
    assert forwarder.stats.connects == 0
    assert "missing-ca.pem" in caplog.text
    assert next(box.rows()).state == "pending"  # nothing lost, nothing marked sent


def test_events_and_telemetry_go_on_puback_clinical_waits_for_the_backend(
    broker: Mosquitto, tmp_path: Path
) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    clinical = obs_row(1)
    event, telemetry = event_row(), telemetry_row(1)
    box.add([clinical, event, telemetry])
    forwarder = Forwarder(box, _link_factory(broker.port), TOPICS)
    asyncio.run(run_until(forwarder, lambda: len(list(box.rows())) == 1, timeout=15))
    (row,) = box.rows()  # no backend here: the clinical row stays until acknowledged
    assert (row.msg_id, row.state) == (clinical.msg_id, "in_flight")


def test_an_ack_that_cannot_be_applied_is_retried_not_lost(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox is locked (an operator tool) when the backend's ack arrives."""
    proxy = FaultProxy(broker.port).start()
    proxy.set_mode("delay", 1.5)  # time to lock the outbox between publish and ack
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    rows = [obs_row(n) for n in range(3)]
    box.add(rows)
    forwarder = Forwarder(
        box, _link_factory(proxy.port), TOPICS, ForwarderSettings(resend_after=8.0)
    )
    blocker = sqlite3.connect(path, isolation_level=None)

    async def scenario() -> None:
        async with forwarding(forwarder), asyncio.timeout(40):
            while [r.state for r in box.rows()] != ["in_flight"] * 3:
                await asyncio.sleep(0.01)
            blocker.execute("BEGIN EXCLUSIVE")
            while "backend ack not applied" not in caplog.text:
                await asyncio.sleep(0.1)
            blocker.execute("ROLLBACK")
            proxy.set_mode("pass")
            while list(box.rows()):  # re-sent after resend_after, acked again, deleted
                await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
    finally:
        blocker.close()
        proxy.stop()
    assert sorted(backend.stored_ids()) == sorted(r.msg_id for r in rows)
    assert forwarder.stats.connects == 1  # the link survived the locked outbox


def test_backend_deduplicates_resent_copies(
    broker: Mosquitto, backend: BackendStore, tmp_path: Path
) -> None:
    """A row re-sent after a lost PUBACK or ack arrives twice: stored once, acked both times."""
    box = Outbox(tmp_path / "outbox.sqlite")
    row = obs_row(7)
    box.add([row])
    forwarder = Forwarder(box, _link_factory(broker.port), TOPICS)
    asyncio.run(run_until(forwarder, lambda: not list(box.rows()), timeout=15))
    box.add([row])  # the same reading again, e.g. the device repeated it after a crash
    asyncio.run(run_until(forwarder, lambda: not list(box.rows()), timeout=15))
    assert backend.stored_ids() == [row.msg_id]
    assert backend.duplicate_copies() == 1


def test_messages_the_broker_drops_after_its_puback_are_sent_again(tmp_path: Path) -> None:
    """node-red #2864, "messages lost despite QoS 1": mosquitto PUBACKs a message and then drops
    it when the subscriber's queue is full (``max_queued_messages``); only the backend's ack
    deletes a row, so the rows it never saw are sent again after ``resend_after``."""
    broker = Mosquitto(tmp_path / "broker")
    broker.conf.write_text(
        broker.conf.read_text() + "max_inflight_messages 2\nmax_queued_messages 3\n"
    )
    broker.start()
    store = BackendStore(tmp_path / "backend.sqlite")
    box = Outbox(tmp_path / "outbox.sqlite")
    rows = [obs_row(n) for n in range(30)]
    box.add(rows)
    forwarder = Forwarder(
        box, _link_factory(broker.port), TOPICS, ForwarderSettings(resend_after=2.0)
    )

    async def scenario() -> None:
        with running_backend(broker.port, store, "backend-q"):
            pass  # its persistent session and subscription stay while it is away
        async with forwarding(forwarder), asyncio.timeout(60):
            while forwarder.stats.published < len(rows):  # all PUBACKed, backend away
                await asyncio.sleep(0.05)
            with running_backend(broker.port, store, "backend-q"):
                while list(box.rows()):
                    await asyncio.sleep(0.1)

    try:
        asyncio.run(scenario())
        assert sorted(store.stored_ids()) == sorted(r.msg_id for r in rows)
        # the broker really dropped PUBACKed messages: some rows had to be published again
        assert forwarder.stats.published > len(rows)
    finally:
        store.close()
        broker.stop()


def test_only_the_tablet_can_open_a_visit_over_mqtt(tmp_path: Path) -> None:
    """``cmd/visit`` reaches the gateway from the tablet's identity only (broker ACL)."""
    users = {"gw": "gw-secret", "tablet": "tab-secret", "intruder": "bad-secret"}
    passwords = tmp_path / "passwd"
    passwords.touch()
    for user, secret in users.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, secret], check=True)
    passwords.chmod(0o600)
    for user, secret in users.items():
        (tmp_path / f"{user}.pw").write_text(secret)
    acl = tmp_path / "acl"
    acl.write_text(
        f"user gw\ntopic readwrite santebus/v1/{BUS}/#\n"
        f"user tablet\ntopic write {TOPICS.cmd('visit')}\n"
        f"user intruder\ntopic write santebus/v1/{BUS}/obs/#\n"
    )
    port, observe = free_port(), free_port()
    broker = Mosquitto(
        tmp_path / "broker",
        port=port,
        conf="per_listener_settings true\n"
        f"listener {port} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {passwords}\nacl_file {acl}\n"
        + observer_listener(observe, tmp_path / "observer"),
        observe_port=observe,
    ).start()
    book = VisitBook(tmp_path / "visits.sqlite", {"eye", "bp"})
    box = Outbox(tmp_path / "outbox.sqlite")

    def settings(user: str) -> MqttSettings:
        return MqttSettings(
            host="127.0.0.1", port=port, client_id=f"it-{user}", tls=False,
            username=user, password_file=tmp_path / f"{user}.pw",
        )  # fmt: skip

    forwarder = Forwarder(box, lambda: PahoPublisher(settings("gw")), TOPICS)
    forwarder.commands[TOPICS.cmd("visit")] = VisitCommands(book).handle

    async def command(user: str, body: dict[str, str]) -> PublishOutcome:
        link = PahoPublisher(settings(user))
        try:
            await link.connect()
            return await link.publish(TOPICS.cmd("visit"), json.dumps(body).encode())
        finally:
            await link.close()

    async def scenario() -> None:
        async with forwarding(forwarder), asyncio.timeout(30):
            while not forwarder.connected.is_set():
                await asyncio.sleep(0.05)
            refused = await command(
                "intruder", {"action": "start", "station": "bp", "visit": "V-EVIL"}
            )
            assert (refused.accepted, refused.reason) == (False, "Not authorized (135)")
            ok = await command("tablet", {"action": "start", "station": "eye", "visit": "V-7F3A"})
            assert ok.accepted
            while not book.open_visits():
                await asyncio.sleep(0.05)

    try:
        asyncio.run(scenario())
        assert [(v.station, v.visit_id) for v in book.open_visits()] == [("eye", "V-7F3A")]
    finally:
        broker.stop()
        book.close()


def test_the_window_never_exceeds_the_brokers_receive_maximum(tmp_path: Path) -> None:
    """MQTT 5 [MQTT-3.3.4-7]. mosquitto 2.0 advertises Receive Maximum = max_inflight_messages
    but does not enforce it (stricter brokers disconnect with 0x93), so the test counts the
    publishes awaiting their PUBACK itself, around the real adapter."""
    broker = Mosquitto(tmp_path / "broker")
    broker.conf.write_text(broker.conf.read_text() + "max_inflight_messages 4\n")
    broker.start()
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([obs_row(n) for n in range(60)])
    settings = MqttSettings(host="127.0.0.1", port=broker.port, client_id="gw-rm", tls=False)
    peak = [0]

    class Counting(PahoPublisher):
        outstanding = 0

        def send(self, *args: Any, **kwargs: Any) -> asyncio.Future[PublishOutcome]:
            fut = super().send(*args, **kwargs)
            self.outstanding += 1
            peak[0] = max(peak[0], self.outstanding)
            fut.add_done_callback(self._settled)
            return fut

        def _settled(self, _fut: object) -> None:
            self.outstanding -= 1

    links: list[Counting] = []

    def factory() -> Publisher:
        links.append(Counting(settings))
        return links[-1]

    forwarder = Forwarder(box, factory, TOPICS, ForwarderSettings(max_in_flight=100))
    try:
        asyncio.run(run_until(forwarder, lambda: forwarder.stats.published >= 60, timeout=30))
    finally:
        broker.stop()
    assert links[0].receive_maximum == 4
    assert 1 <= peak[0] <= 3  # the broker's 4, less one kept for status and events
