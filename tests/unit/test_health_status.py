"""The status socket and ``santebus status``: paths, modes, stale sockets, the not-running case."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from edge.cli import main
from edge.health.status import (
    SYSTEMD_SOCKET,
    DaemonNotRunningError,
    StatusServer,
    StatusSocketError,
    StatusUnreadableError,
    client_sockets,
    daemon_socket,
    read_status,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"

SNAPSHOT: dict[str, Any] = {
    "bus": "bus-demo-01",
    "version": "0.1.0",
    "pid": 4242,
    "started": 1000.0,
    "at": 1000.0 + 3725,
    "uptime_s": 3725.0,
    "mqtt": {
        "connected": True,
        "connects": 2,
        "last_connect": 1000.0 + 3600,
        "published": 12,
        "confirmed": 10,
        "rejected": 1,
        "puback_latency": {"count": 12, "mean_s": 0.004},
        "backend_latency": {"count": 10, "mean_s": 0.2},
    },
    "outbox": {
        "pending": 3,
        "in_flight": 2,
        "rejected": 1,
        "oldest_age_s": 95.0,
        "by_kind": {"clinical": {"pending": 3}},
        "by_kind_age_s": 1.0,
        "used_bytes": 40960,
        "budget_bytes": 1 << 30,
        "error": None,
    },
    "devices": {
        "tono-1": {
            "kind": "ct80",
            "state": "connected",
            "connects": 1,
            "failures": 0,
            "records": 7,
            "frame_errors": 2,
            "last_record_age_s": 4.2,
            "calibration": {
                "validity": "valid",
                "record": "VER-1",
                "valid_until": "2099-12-31",
                "days_left": 27000,
            },
        },
        "cabin": {
            "kind": "modbus",
            "state": "silent",
            "connects": 0,
            "failures": 5,
            "records": 0,
            "frame_errors": 1,
            "last_record_age_s": None,
            "calibration": None,
        },
    },
}


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_the_socket_is_0660_served_per_connection_and_removed_at_stop(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"

    async def main() -> dict[str, Any]:
        server = StatusServer(path, lambda: SNAPSHOT)
        await server.start()
        try:
            assert stat.S_IMODE(path.stat().st_mode) == 0o660
            assert stat.S_ISSOCK(path.stat().st_mode)
            first = await asyncio.to_thread(read_status, path)
            assert first == await asyncio.to_thread(read_status, path)  # one per connection
            return first
        finally:
            await server.close()

    assert _run(main()) == SNAPSHOT
    assert not path.exists()


def test_a_stale_socket_is_replaced_a_live_one_and_other_files_are_left(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))  # bound, never listening: what a SIGKILLed daemon leaves
    dead.close()

    async def main() -> None:
        server = StatusServer(path, lambda: {"n": 1})
        await server.start()  # replaces the stale one
        try:
            intruder = StatusServer(path, lambda: {"n": 2})
            with pytest.raises(StatusSocketError, match="another process answers"):
                await intruder.start()
            assert await asyncio.to_thread(read_status, path) == {"n": 1}
        finally:
            await server.close()

    _run(main())
    path.write_text("not a socket")
    with pytest.raises(StatusSocketError, match="is not a socket"):
        _run(StatusServer(path, dict).start())
    assert path.read_text() == "not a socket"


def test_a_socket_replaced_behind_the_daemons_back_is_not_removed(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"

    async def main() -> None:
        server = StatusServer(path, dict)
        await server.start()
        path.unlink()
        other = socket.socket(socket.AF_UNIX)
        other.bind(str(path))
        try:
            await server.close()
            assert path.exists()  # someone else's now
        finally:
            other.close()

    _run(main())


def test_where_the_daemon_listens_and_where_the_cli_looks(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert daemon_socket("", state, {}) == state / "status.sock"
    systemd = {"RUNTIME_DIRECTORY": "/run/santebus:/run/other"}
    assert daemon_socket("", state, systemd) == Path("/run/santebus/status.sock")
    assert daemon_socket("/x/s.sock", state, systemd) == Path("/x/s.sock")
    assert client_sockets(None, None, {}) == [SYSTEMD_SOCKET]
    assert client_sockets("/x/s.sock", state, {}) == [Path("/x/s.sock")]
    assert client_sockets("", state, {}) == [SYSTEMD_SOCKET, state / "status.sock"]
    assert client_sockets("", state, systemd) == [SYSTEMD_SOCKET]


def test_read_status_errors_name_the_path(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with pytest.raises(DaemonNotRunningError, match=f"{path}: no such socket"):
        read_status(path)
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(path))
    dead.close()
    with pytest.raises(DaemonNotRunningError, match=f"{path}: connection refused"):
        read_status(path)


@contextmanager
def _one_answer(path: Path, answer: bytes) -> Iterator[None]:
    """A socket that answers one connection with ``answer`` (a stand-in daemon)."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(answer)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        yield
    finally:
        thread.join(5)
        server.close()
        path.unlink()


def _status(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["status", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_cli_says_the_daemon_is_not_running_and_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "none.sock"
    code, out, err = _status("--socket", str(missing))
    assert (code, out) == (3, "")
    assert err == f"santebus daemon not running: {missing}: no such socket\n"
    # from the config: its [health] status_socket
    sets = ["--config", str(EXAMPLE), "--set", f"health.status_socket={missing}"]
    code, _, err = _status(*sets)
    assert code == 3
    assert str(missing) in err
    # a stale socket: connection refused
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(str(missing))
    dead.close()
    code, _, err = _status("--socket", str(missing), "--json")
    assert (code, err) == (3, f"santebus daemon not running: {missing}: connection refused\n")


def test_the_cli_with_a_config_and_no_socket_setting_names_both_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the systemd default moved to a path of the test's own: a daemon running on this machine
    # (/run/santebus/status.sock) must not change the outcome, and the test must not skip
    systemd_default = tmp_path / "run" / "status.sock"
    monkeypatch.setattr("edge.health.status.SYSTEMD_SOCKET", systemd_default)
    state = tmp_path / "state"
    code, _, err = _status("--config", str(EXAMPLE), "--set", f"gateway.state_dir={state}")
    assert code == 3
    assert err == (
        f"santebus daemon not running: no status socket at {systemd_default}"
        f" or {state / 'status.sock'}\n"
    )


def test_a_garbled_answer_is_status_unknown(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    with _one_answer(path, b"<html>not json"):
        code, _, err = _status("--socket", str(path))
    assert code == 4
    assert err.startswith(f"santebus status unknown: {path}: not a status snapshot")
    with pytest.raises(StatusUnreadableError), _one_answer(path, b"[1, 2]"):
        read_status(path)


def test_json_and_table(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    payload = json.dumps(SNAPSHOT).encode()
    with _one_answer(path, payload):
        code, out, _ = _status("--socket", str(path), "--json")
    assert (code, json.loads(out)) == (0, SNAPSHOT)
    with _one_answer(path, payload):
        code, out, _ = _status("--socket", str(path))
    assert code == 0
    assert "bus bus-demo-01" in out
    assert "up 1h02m" in out
    assert "mqtt connected (last connect 2m05s ago)" in out
    assert "outbox 3 pending, 2 in flight, 1 rejected; oldest waiting 1m35s" in out
    rows = {line.split()[1]: line for line in out.splitlines() if line.startswith("│")}
    cells = [cell.strip() for cell in rows["tono-1"].split("│")[1:-1]]
    assert cells == ["tono-1", "ct80", "connected", "7", "0", "2", "4s", "valid, 27000 d left"]
    assert "silent" in rows["cabin"]


def test_a_daemon_that_does_not_answer_in_time_is_status_unknown(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()  # the kernel accepts the connection; nobody ever writes
    try:
        with pytest.raises(StatusUnreadableError, match=r"no complete answer within 0.2 s"):
            read_status(path, timeout=0.2)
    finally:
        server.close()
