"""The systemd notification protocol, spoken without libsystemd.

sd_notify(3): the service manager passes an ``AF_UNIX`` datagram socket in ``$NOTIFY_SOCKET``
(a path, or an abstract name when it starts with ``@``); the service sends newline-separated
``KEY=VALUE`` assignments to it: ``READY=1`` when start-up is complete (``Type=notify``),
``STATUS=...`` free text shown by ``systemctl status``, ``WATCHDOG=1`` keep-alive pings,
``STOPPING=1`` at the start of a clean stop, ``EXTEND_TIMEOUT_USEC=`` to ask for more time.

sd_watchdog_enabled(3): with ``WatchdogSec=`` set, systemd exports ``WATCHDOG_USEC`` (the
interval in microseconds) and ``WATCHDOG_PID`` (the pid expected to ping; a child that
inherited the environment must not ping for its parent). The service should ping at half
the interval.

Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op, so the daemon runs unchanged in a
terminal, in the tests and under the simulators.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify assignments; silent when the service manager gave no socket."""

    def __init__(self, address: str | None, watchdog_usec: int | None) -> None:
        self.address = address
        #: the watchdog interval in seconds, None when systemd does not watch this process
        self.watchdog_interval = watchdog_usec / 1e6 if watchdog_usec else None
        self._sock: socket.socket | None = None
        self._failed = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier systemd set up for this process (sd_notify(3), sd_watchdog_enabled(3))."""
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET") or None
        usec: int | None = None
        raw = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process systemd watches: an inherited value is not ours.
        if raw.isdigit() and int(raw) > 0 and (not pid or pid == str(os.getpid())):
            usec = int(raw)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, **fields: str | int) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram; False (logged once) when it cannot be sent.

        A failed notification must never stop the daemon: systemd will act on the missing
        READY or WATCHDOG by itself, which is the right outcome for a daemon that cannot talk
        to it.
        """
        if self.address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(payload, target)
        except OSError as exc:
            if not self._failed:
                log.error("systemd notification failed socket=%s error=%r", self.address, str(exc))
                self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str) -> bool:
        return self.send(READY=1, STATUS=status)

    def status(self, status: str) -> bool:
        return self.send(STATUS=status)

    def watchdog(self) -> bool:
        return self.send(WATCHDOG=1)

    def stopping(self, status: str) -> bool:
        return self.send(STOPPING=1, STATUS=status)

    def extend_timeout(self, seconds: float) -> bool:
        return self.send(EXTEND_TIMEOUT_USEC=int(seconds * 1e6))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
