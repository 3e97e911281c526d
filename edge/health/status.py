"""The status socket: the daemon writes one JSON snapshot per connection; ``santebus status`` reads.

Where: ``[health] status_socket``, or by default ``$RUNTIME_DIRECTORY/status.sock`` when
systemd gives the unit a runtime directory (``RuntimeDirectory=santebus``: ``/run/santebus``),
else ``<gateway.state_dir>/status.sock``. The socket is made with mode 0660 (the umask is set
around ``bind``, so it never exists with a wider mode): the daemon's user and group may read.
A stale socket left by a killed daemon (nothing accepts on it) is replaced at start; one that
a live daemon answers on is left alone, and so is a path that is not a socket. It is removed
at stop, if it is still this daemon's.

The protocol: connect, read to EOF, one JSON object (edge/health/snapshot.py ``to_json``)
and a newline. The client sends nothing.

This module imports nothing of the daemon (the CLI stays light); the server side takes a
callable returning the JSON-able snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edge.health.serve import Connections

log = logging.getLogger(__name__)

NAME = "status.sock"
#: where the packaged unit's daemon listens (RuntimeDirectory=santebus)
SYSTEMD_SOCKET = Path("/run/santebus") / NAME
#: a snapshot is a few kB per device; anything beyond this is not one
MAX_SNAPSHOT = 4 << 20


class StatusSocketError(OSError):
    """The daemon cannot serve its status on the configured path."""


class DaemonNotRunningError(ConnectionError):
    """Nothing answers on the status socket: the daemon is not running (or not here)."""


class StatusUnreadableError(OSError):
    """The socket answered, but not with a snapshot (or not in time, or not to us)."""


def daemon_socket(configured: str, state_dir: Path, env: Mapping[str, str] | None = None) -> Path:
    """The path the daemon listens on, from ``[health] status_socket`` and its environment."""
    if configured:
        return Path(configured)
    env = os.environ if env is None else env
    # systemd.exec(5): RuntimeDirectory= paths, colon-separated when the unit names several
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    return Path(runtime) / NAME if runtime else state_dir / NAME


def client_sockets(
    configured: str | None, state_dir: Path | None, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Where ``santebus status`` looks, in order (``configured`` None: no config given).

    With a config but no ``status_socket``, the daemon's choice depends on its environment
    (systemd's ``RUNTIME_DIRECTORY``), which the CLI does not share: both defaults are tried.
    """
    env = os.environ if env is None else env
    if configured:
        return [Path(configured)]
    if state_dir is None:
        return [SYSTEMD_SOCKET]
    if env.get("RUNTIME_DIRECTORY"):
        return [daemon_socket("", state_dir, env)]
    return [SYSTEMD_SOCKET, state_dir / NAME]


def read_status(path: Path, timeout: float = 5.0) -> dict[str, Any]:
    """The snapshot the daemon serves on ``path`` (blocking; for the CLI)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            why = "no such socket" if isinstance(exc, FileNotFoundError) else "connection refused"
            raise DaemonNotRunningError(f"{path}: {why}") from exc
        except PermissionError as exc:
            raise StatusUnreadableError(f"{path}: permission denied") from exc
        except OSError as exc:
            raise StatusUnreadableError(f"{path}: {exc.strerror or exc}") from exc
        chunks: list[bytes] = []
        size = 0
        try:
            while size <= MAX_SNAPSHOT and (chunk := sock.recv(65536)):
                chunks.append(chunk)
                size += len(chunk)
        except TimeoutError as exc:
            raise StatusUnreadableError(f"{path}: no complete answer within {timeout} s") from exc
        except OSError as exc:
            raise StatusUnreadableError(f"{path}: {exc.strerror or exc}") from exc
    if size > MAX_SNAPSHOT:
        raise StatusUnreadableError(f"{path}: answer larger than {MAX_SNAPSHOT} bytes")
    try:
        data = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise StatusUnreadableError(f"{path}: not a status snapshot ({exc})") from exc
    if not isinstance(data, dict):
        raise StatusUnreadableError(f"{path}: not a status snapshot")
    return data


class StatusServer:
    """Serves ``snapshot()`` as JSON on a unix socket at ``path``."""

    def __init__(
        self, path: Path, snapshot: Callable[[], dict[str, Any]], write_timeout: float = 5.0
    ) -> None:
        self.path = path
        self.snapshot = snapshot
        self.write_timeout = write_timeout
        self._server: asyncio.Server | None = None
        self._inode: tuple[int, int] | None = None
        #: connections being served (aborted at close)
        self._clients = Connections()

    async def start(self) -> None:
        """Bind and listen; raises :class:`StatusSocketError` naming the path and the cause."""
        await _claim(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # chmod after bind, not a umask: the umask is process-wide and worker threads
            # (paho's connect, the analyses) may create files meanwhile. The directory is
            # 0750 (RuntimeDirectoryMode=), so the brief default mode exposes nothing.
            sock.bind(str(self.path))
            self.path.chmod(0o660)
            st = self.path.stat()
            self._inode = (st.st_dev, st.st_ino)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except OSError as exc:
            sock.close()
            self._unlink()
            raise StatusSocketError(f"cannot listen on {self.path}: {exc.strerror or exc}") from exc

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._clients.drop()
        self._unlink()

    def _unlink(self) -> None:
        """Remove the socket file if it is still the one this server bound."""
        if self._inode is None:
            return
        with contextlib.suppress(OSError):
            st = self.path.lstat()
            if (st.st_dev, st.st_ino) == self._inode:
                self.path.unlink()
        self._inode = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # a snapshot bug must not reach the loop's exception handler: logged (``failed``)
        await self._clients.serve(
            writer,
            self._answer,
            write_timeout=self.write_timeout,
            log=log,
            dropped="status client dropped error=%r",
            failed="status snapshot failed",
        )

    async def _answer(self) -> bytes:
        return json.dumps(self.snapshot(), sort_keys=True).encode() + b"\n"


def _is_socket(path: Path) -> bool:
    """True for a socket at ``path``, False for nothing; raises for anything else there."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return False
    if not stat.S_ISSOCK(st.st_mode):
        raise StatusSocketError(f"{path} exists and is not a socket; it is left alone")
    return True


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _claim(path: Path) -> None:
    """Make ``path`` free for a new socket: remove a stale one, refuse anything else."""
    if not _is_socket(path):
        return
    try:
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_unix_connection(str(path))
    except ConnectionRefusedError:  # nobody accepts: left by a daemon that was killed
        _remove(path)
        log.info("stale status socket replaced path=%s", path)
        return
    except (OSError, TimeoutError) as exc:
        raise StatusSocketError(f"cannot check the existing socket {path}: {exc}") from exc
    writer.transport.abort()
    raise StatusSocketError(f"another process answers on {path}; it is left alone")
