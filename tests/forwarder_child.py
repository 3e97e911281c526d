"""A forwarder alone in a process, for tests that SIGKILL it: ``python -m tests.forwarder_child
OUTBOX PORT``. It drains the outbox to the broker on 127.0.0.1:PORT until it is killed."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from edge.outbox import Outbox
from edge.publish.forwarder import Forwarder, ForwarderSettings
from edge.publish.mqtt import PahoPublisher
from edge.publish.port import MqttSettings
from tests.helpers import TOPICS


async def main(outbox: Path, port: int) -> None:
    settings = MqttSettings(host="127.0.0.1", port=port, client_id="gw-objects", tls=False)
    forwarder = Forwarder(
        Outbox(outbox),
        lambda: PahoPublisher(settings),
        TOPICS,
        ForwarderSettings(resend_after=30.0, backoff_min=0.2, max_object_in_flight=2),
    )
    await forwarder.run()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
