"""TLS fails closed against a real mosquitto (tlsv1.3, client certificates, CRL, per-bus ACL).

Every bad case must end with no connection at all - never a plaintext fallback - and the row
still pending in the outbox.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.outbox import Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings, Publisher
from simulators.backend.store import BackendStore
from simulators.harness import Mosquitto, free_port
from tests.contract_watch import observer_listener
from tests.helpers import BUS, TOPICS, obs_row, run_until, running_backend
from tests.tlsutil import Identity, Pki


@dataclass
class TlsBroker:
    broker: Mosquitto
    tls_port: int
    plain_port: int
    pki: Pki
    bus: Identity
    backend: Identity


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    pki = Pki(tmp_path / "pki")
    server = pki.issue("broker", server=True, dns=("localhost",))  # no IP SAN on purpose
    bus = pki.issue(BUS)
    backend = pki.issue("santebus-backend")
    pki.issue("bus-revoked")
    pki.revoke("bus-revoked")
    acl = tmp_path / "acl"
    # each bus is confined to its own prefix (its certificate CN is its user name)
    acl.write_text(
        "pattern readwrite santebus/v1/%u/#\n\n"
        "user santebus-backend\ntopic readwrite santebus/v1/#\n"
    )
    tls_port, plain_port, observe = free_port(), free_port(), free_port()
    conf = (
        "per_listener_settings true\n"
        f"listener {tls_port} 127.0.0.1\n"
        f"cafile {pki.ca_file}\ncertfile {server.cert}\nkeyfile {server.key}\n"
        f"crlfile {pki.root / 'crl.pem'}\n"
        "tls_version tlsv1.3\nrequire_certificate true\nuse_identity_as_username true\n"
        f"acl_file {acl}\n"
        f"listener {plain_port} 127.0.0.1\nallow_anonymous true\nacl_file {acl}\n"
        + observer_listener(observe, tmp_path / "observer")
        + "persistence false\nlog_dest stderr\n"
    )
    broker = Mosquitto(tmp_path / "broker", port=tls_port, conf=conf, observe_port=observe).start()
    yield TlsBroker(broker, tls_port, plain_port, pki, bus, backend)
    broker.stop()


def _factory(settings: MqttSettings) -> Callable[[], Publisher]:
    return lambda: PahoPublisher(settings)


def _settings(
    t: TlsBroker, ident: Identity | None, host: str = "localhost", **kw: object
) -> MqttSettings:
    base: dict[str, object] = {
        "host": host,
        "port": t.tls_port,
        "client_id": "gw-tls",
        "tls": True,
        "ca_file": t.pki.ca_file,
        "cert_file": ident.cert if ident else None,
        "key_file": ident.key if ident else None,
        "connect_timeout": 3.0,
    }
    base.update(kw)
    return MqttSettings(**base)  # type: ignore[arg-type]


def test_a_bus_with_its_certificate_delivers_and_cannot_publish_for_another_bus(
    tls_broker: TlsBroker, tmp_path: Path
) -> None:
    store = BackendStore(tmp_path / "backend.sqlite")
    t = tls_broker
    tls = (t.pki.ca_file, t.backend.cert, t.backend.key)
    with running_backend(t.tls_port, store, "backend-tls", host="localhost", tls=tls):
        box = Outbox(tmp_path / "outbox.sqlite")
        own = obs_row(1)
        other = obs_row(2)
        foreign = dataclasses.replace(other, topic="santebus/v1/bus-other/obs/tono-1")
        box.add([own, foreign])
        forwarder = Forwarder(box, _factory(_settings(t, t.bus)), TOPICS)

        def settled() -> bool:
            return [r.state for r in box.rows()] == ["rejected"]

        asyncio.run(run_until(forwarder, settled, 20))
        (row,) = box.rows()
        assert row.msg_id == foreign.msg_id
        assert row.reason == "broker refused: Not authorized (135)"
        assert store.stored_ids() == [own.msg_id]
    store.close()


@pytest.mark.parametrize(
    "case",
    ["no client certificate", "certificate from another CA", "expired certificate",
     "revoked certificate", "wrong host name", "plaintext port"],
)  # fmt: skip
def test_bad_tls_is_refused_and_never_downgraded(
    tls_broker: TlsBroker, tmp_path: Path, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    t = tls_broker
    if case == "no client certificate":
        settings = _settings(t, None)
    elif case == "certificate from another CA":
        settings = _settings(t, Pki(tmp_path / "rogue", "rogue-ca").issue(BUS))
    elif case == "expired certificate":
        settings = _settings(t, t.pki.issue("bus-old", expired=True))
    elif case == "revoked certificate":
        settings = _revoked(t)
    elif case == "wrong host name":
        settings = _settings(t, t.bus, host="127.0.0.1")  # the cert names only "localhost"
    else:
        settings = _settings(t, t.bus, port=t.plain_port)
    box = Outbox(tmp_path / "outbox.sqlite")
    box.add([obs_row(1)])
    forwarder = Forwarder(
        box, _factory(settings), TOPICS, ForwarderSettings(backoff_min=0.2, backoff_max=0.5)
    )
    asyncio.run(run_until(forwarder, lambda: caplog.text.count("mqtt link down") >= 2, 15))
    assert forwarder.stats.connects == 0, f"{case}: a connection was established"
    assert caplog.text.count("mqtt link down") >= 2, f"{case}: not retried"
    (row,) = box.rows()
    assert (row.state, row.attempts) == ("pending", 0)


def _revoked(t: TlsBroker) -> MqttSettings:
    return _settings(t, Identity(t.pki.root / "bus-revoked.pem", t.pki.root / "bus-revoked.key"))
