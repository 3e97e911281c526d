"""The health endpoints as one daemon task: ``/metrics`` over HTTP and the status socket.

An endpoint that cannot start (the metrics port is in use, the socket's directory is missing)
is an error in the log and a ``health.unavailable`` event, never the end of the daemon: the
buses keep measuring without their metrics. The task then waits until it is cancelled at
stop, when it closes both endpoints and removes the socket file.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from edge.config import HealthSection
from edge.events import Events
from edge.health import metrics
from edge.health.http import HttpServer
from edge.health.snapshot import Snapshots, Sources
from edge.health.status import StatusServer, daemon_socket

log = logging.getLogger(__name__)


class HealthEndpoints:
    """Run :meth:`run` as a task of the daemon; cancel it to stop."""

    def __init__(
        self,
        sources: Sources,
        events: Events | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        config = sources.config
        self.settings: HealthSection = config.health
        self.snapshots = Snapshots(sources)
        self.events = events
        self.registry = metrics.registry(self.snapshots.take)
        env = os.environ if env is None else env
        self.socket_path = daemon_socket(self.settings.status_socket, config.gateway.state_dir, env)
        self.http: HttpServer | None = None
        self.status: StatusServer | None = None

    def metrics_page(self, headers: Mapping[str, str]) -> tuple[bytes, str]:
        return metrics.exposition(self.registry, headers.get("accept", ""))

    def status_json(self) -> dict[str, Any]:
        return self.snapshots.take().to_json()

    async def start(self) -> None:
        """Start what can start; report what cannot."""
        s = self.settings
        if s.metrics:
            server = HttpServer({"/metrics": self.metrics_page})
            address = f"{s.metrics_host}:{s.metrics_port}"
            try:
                await server.start(s.metrics_host, s.metrics_port)
            except OSError as exc:
                self._unavailable("metrics", address, exc)
            else:
                self.http = server
                log.info("metrics endpoint listening address=%s path=/metrics", address)
        status = StatusServer(self.socket_path, self.status_json)
        try:
            await status.start()
        except OSError as exc:
            self._unavailable("status", str(self.socket_path), exc)
        else:
            self.status = status
            log.info("status socket listening path=%s", self.socket_path)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        if self.status is not None:
            await self.status.close()
            self.status = None
        self.snapshots.close()

    async def run(self) -> None:
        try:
            await self.start()
            await asyncio.Event().wait()  # until cancelled at stop
        finally:
            await self.close()

    def _unavailable(self, endpoint: str, address: str, exc: OSError) -> None:
        """Logged at ERROR (the event's own log line when events are raised), not raised."""
        error = exc.strerror or str(exc)
        if self.events is None:
            log.error(
                "health endpoint unavailable endpoint=%s address=%s error=%r",
                endpoint,
                address,
                error,
            )
            return
        self.events.raise_event(
            "health.unavailable", "error", None, endpoint=endpoint, address=address, error=error
        )
