"""Every message published on every broker the test suite starts honours docs/asyncapi.yaml.

An autouse fixture (tests/conftest.py) registers a :class:`ContractWatch` with the harness's
:class:`~simulators.harness.Mosquitto`: each broker a test starts - its ``broker`` fixture, a
second broker, a restarted one, the TLS one - gets a subscriber on ``#`` through the product's
own MQTT adapter, and at the end of the test every message seen must pass
:func:`tests.contract.violations` (topic in the document, payload valid against the message's
schema, Observations and Media manifests valid FHIR R4; object chunks on ``.../obj/...`` are
raw bytes, so only their topic is checked). A test that publishes an invalid payload on purpose
says so with ``@pytest.mark.publishes_invalid(match=...)``, and then at least one violation must
occur and every violation must contain ``match``.
"""

from __future__ import annotations

from pathlib import Path

from edge.publish.port import InboundMessage
from simulators.harness import Mosquitto
from tests.capture import Capture
from tests.contract import violations


def observer_listener(port: int, workdir: Path) -> str:
    """mosquitto.conf lines for a read-only anonymous listener the watch can use on a broker
    whose own listeners require credentials (needs ``per_listener_settings true`` first)."""
    acl = workdir / "observer.acl"
    workdir.mkdir(parents=True, exist_ok=True)
    acl.write_text("topic read #\n")  # topic lines before any `user` line: anonymous clients
    return f"listener {port} 127.0.0.1\nallow_anonymous true\nacl_file {acl}\n"


class ContractWatch:
    """Captures per running broker; :attr:`seen` holds what stopped captures received."""

    def __init__(self) -> None:
        self._live: dict[int, Capture] = {}
        self.seen: list[InboundMessage] = []
        self.brokers = 0  # broker starts watched

    def started(self, broker: Mosquitto) -> None:
        # The same client id for a restarted broker: with persistence, what was published while
        # the capture was away waits in its session (clean_start=False, MQTT 5 3.1.2.4).
        client_id = f"contract-watch-{broker.observe_port}"
        self._live[id(broker)] = Capture(broker.observe_port, "#", client_id).start()
        self.brokers += 1

    def stopping(self, broker: Mosquitto) -> None:
        capture = self._live.pop(id(broker), None)
        if capture is not None:
            capture.stop()
            self.seen.extend(capture.seen)

    def close(self) -> None:
        for capture in self._live.values():
            capture.stop()
            self.seen.extend(capture.seen)
        self._live.clear()

    def violations(self) -> list[str]:
        return [v for m in self.seen for v in violations(m.topic, m.payload)]
