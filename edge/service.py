"""The daemon as a systemd service: readiness, a watchdog fed by the event loop, a status line.

**Readiness** (``Type=notify``, sd_notify(3) ``READY=1``) is sent once the outbox is open (it
is before this task starts), the MQTT publisher has made its first connection attempt, and
every configured device has made its first open attempt (its health left ``"starting"``). A
failed attempt counts as settled: the bus often starts without 4G, and a tonometer may be
switched off; the daemon works on regardless, which is what the unit should report. A device
still pending after ``ready_within`` seconds (a slow BLE scan) does not hold the start-up: READY
then goes with a STATUS naming what is still pending.

**Watchdog** (``WatchdogSec=``, sd_watchdog_enabled(3)): a task *on the event loop* sends
``WATCHDOG=1`` every half interval, so the pings stop exactly when the loop stops turning. Each
ping also re-arms :func:`faulthandler.dump_traceback_later` at 0.8 x the interval: a C thread
that, if the loop does not re-arm it in time, writes every thread's Python stack to stderr (the
journal) and ends the process with status 1. A hung loop thus ends in a failure exit that
``Restart=on-failure`` restarts, with the stack that shows where it hung, a little before
systemd's own watchdog (SIGABRT at the full interval) would have to step in; systemd's remains
the backstop for a process that cannot run even that thread. When systemd gives the service a
``LogsDirectory=`` (``$LOGS_DIRECTORY``), the stacks go to ``stall.log`` there instead of
stderr: a loop hung on a blocked journal would block a dump to stderr too. The next start logs
an error naming the report and renames it ``stall-<time>.log`` (the last few are kept).

**Status**: ``STATUS=`` is refreshed every ``status_every`` seconds for ``systemctl status``:
devices connected, readings waiting in the outbox, the broker link.
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edge.outbox import OutboxError
from edge.sdnotify import Notifier
from edge.supervise import DeviceHealth

log = logging.getLogger(__name__)

#: the stall guard fires at this fraction of systemd's watchdog interval (before systemd does)
GUARD_FRACTION = 0.8
#: stall reports of earlier runs kept in the logs directory
KEEP_REPORTS = 5


def rotate_stall_report(logs_dir: Path) -> Path | None:
    """If the previous run left a stall report, log it and keep it under a dated name."""
    report = logs_dir / "stall.log"
    try:
        if report.stat().st_size == 0:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(report.stat().st_mtime))
        kept = logs_dir / f"stall-{stamp}.log"
        report.rename(kept)
        for old in sorted(logs_dir.glob("stall-*.log"))[:-KEEP_REPORTS]:
            old.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("stall report unreadable path=%s error=%r", report, str(exc))
        return None
    log.error("previous run stopped by the stall guard (event loop hung) stacks=%s", kept)
    return kept


@dataclass(frozen=True, slots=True)
class ServiceView:
    """What the service task reads from the running daemon (all cheap, on the loop)."""

    health: Mapping[str, DeviceHealth]
    publisher_settled: Callable[[], bool]
    publisher_connected: Callable[[], bool]
    waiting_rows: Callable[[], int]


def pending_devices(health: Mapping[str, DeviceHealth]) -> list[str]:
    return sorted(d for d, h in health.items() if h.state == "starting")


def status_line(view: ServiceView) -> str:
    """One line for ``systemctl status``: devices, outbox, broker link."""
    total = len(view.health)
    up = sum(1 for h in view.health.values() if h.state == "connected")
    try:
        waiting = str(view.waiting_rows())
    except OutboxError:  # the status line must not fail on a storage error
        waiting = "?"
    link = "connected" if view.publisher_connected() else "offline"
    return f"devices {up}/{total} connected; {waiting} rows waiting in the outbox; mqtt {link}"


def _pinger_ended(task: asyncio.Task[None]) -> None:
    """A pinger that dies silently would let systemd's watchdog kill the daemon unexplained."""
    if not task.cancelled() and task.exception() is not None:
        log.critical("watchdog pinger failed: systemd will restart the daemon",
                     exc_info=task.exception())  # fmt: skip


class Service:
    """Talks to systemd for the daemon: call :meth:`run` as a task, :meth:`stopping` at stop."""

    def __init__(
        self,
        notifier: Notifier,
        view: ServiceView,
        *,
        ready_within: float = 30.0,
        status_every: float = 30.0,
        poll: float = 0.1,
        logs_dir: Path | None = None,
    ) -> None:
        self.notifier = notifier
        self.view = view
        self.logs_dir = logs_dir
        self.ready_within = ready_within
        self.status_every = status_every
        self.poll = poll
        self.ready = asyncio.Event()
        self._guarded = False
        self._report: IO[bytes] | None = None
        self._pinger: asyncio.Task[None] | None = None

    async def run(self) -> None:
        if self.notifier.watchdog_interval is not None:
            self._pinger = asyncio.create_task(self._watchdog(self.notifier.watchdog_interval))
            self._pinger.add_done_callback(_pinger_ended)
        try:
            await self._announce_ready()
            while True:
                await asyncio.sleep(self.status_every)
                self.notifier.status(status_line(self.view))
        finally:
            await self._stop_pinger()

    async def _stop_pinger(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            await asyncio.gather(self._pinger, return_exceptions=True)
        self.disarm()

    async def _announce_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_within
        while loop.time() < deadline:
            if self.view.publisher_settled() and not pending_devices(self.view.health):
                break
            await asyncio.sleep(self.poll)
        pending = pending_devices(self.view.health)
        status = status_line(self.view)
        if pending:
            status += f"; still connecting: {', '.join(pending)}"
        if not self.view.publisher_settled():
            status += "; broker not yet tried"
        self.notifier.ready(status)
        self.ready.set()
        log.info("service ready status=%r", status)

    async def _watchdog(self, interval: float) -> None:
        """Ping at half the interval from the loop; re-arm the stall guard every ``tick``.

        The guard is re-armed more often than the pings so that it measures the stall itself:
        it fires between ``guard - tick`` and ``guard`` seconds after the loop's last turn
        (re-armed only with the pings, a stall starting just before a ping would fire it after
        ``guard - interval / 2``).
        """
        guard = GUARD_FRACTION * interval
        tick = min(1.0, interval / 4)
        target: IO[str] | IO[bytes] = sys.stderr
        if self.logs_dir is not None:
            rotate_stall_report(self.logs_dir)
            try:
                # Opened now: at stall time nothing may be allocated or opened.
                self._report = target = (self.logs_dir / "stall.log").open("ab")
            except OSError as exc:
                log.error("stall report not writable, stacks go to stderr error=%r", str(exc))
        log.info("watchdog armed interval=%.1fs guard=%.1fs", interval, guard)
        loop = asyncio.get_running_loop()
        next_ping = loop.time()
        while True:
            if loop.time() >= next_ping:
                self.notifier.watchdog()
                next_ping = loop.time() + interval / 2
            # Re-arming cancels the previous timer; if the loop stalls, the C thread fires.
            faulthandler.dump_traceback_later(guard, exit=True, file=target)
            self._guarded = True
            await asyncio.sleep(tick)

    def disarm(self) -> None:
        """Cancel the stall guard (a clean stop is bounded by ``TimeoutStopSec=`` instead)."""
        if self._guarded:
            faulthandler.cancel_dump_traceback_later()
            self._guarded = False
        if self._report is not None:
            self._report.close()
            self._report = None

    def stopping(self, reason: str) -> None:
        """Tell systemd the stop has begun (the last notification: the socket is closed).

        The pinger is cancelled first (it is suspended in its sleep: it runs no more code), so
        no WATCHDOG=1 follows STOPPING=1 and the guard is not re-armed during the stop, which
        ``TimeoutStopSec=`` bounds instead.
        """
        if self._pinger is not None:
            self._pinger.cancel()
        self.disarm()
        self.notifier.stopping(f"stopping: {reason}")
        self.notifier.close()
