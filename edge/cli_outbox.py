"""``santebus outbox stats | list | show ID | requeue ID | export``: the operator's view.

Read commands never change the file (a corrupt outbox is reported, not repaired); ``requeue``
is the one write, safe while the daemon runs (SQLite serialises writers; busy timeout 5 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from edge.config import EdgeConfig
from edge.config_loader import EX_CONFIG, ConfigError, load_config
from edge.outbox import Outbox, OutboxError, Row

json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def load_or_exit(config_path: Path, overrides: tuple[str, ...]) -> EdgeConfig:
    """The config, or every fault on stderr and exit 78 (EX_CONFIG)."""
    try:
        return load_config(config_path, overrides)
    except ConfigError as exc:
        for issue in exc.issues:
            click.echo(f"config error: {issue}", err=True)
        sys.exit(EX_CONFIG)


@contextlib.contextmanager
def open_outbox(config_path: Path, overrides: tuple[str, ...]) -> Iterator[Outbox]:
    """The configured outbox, opened read-only in spirit (never repaired), closed after."""
    path = load_or_exit(config_path, overrides).outbox_path
    if not path.exists():
        click.echo(f"no outbox at {path} (the daemon has not run with this config)", err=True)
        sys.exit(1)
    try:
        box = Outbox(path, repair=False)
    except OutboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    try:
        yield box
    finally:
        box.close()


def row_dict(row: Row, with_payload: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "seq": row.seq,
        "msg_id": row.msg_id,
        "device": row.device,
        "kind": row.kind,
        "state": row.state,
        "attempts": row.attempts,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
        "reason": row.reason,
        "topic": row.topic,
    }
    if with_payload:
        item["payload"] = _payload(row)
    return item


def _payload(row: Row) -> Any:
    """The decoded JSON payload; a chunk of a large object (or any binary payload) as metadata.

    Raw image bytes decoded as text would only be garbled: ``{"bytes": N, "sha256": hex}``
    instead, the SHA-256 to compare with the manifest's ``chunkSha256``.
    """
    if row.priority == 0:
        try:
            return json.loads(row.payload)
        except ValueError:
            with contextlib.suppress(UnicodeDecodeError):
                return row.payload.decode("utf-8")
    return {"bytes": len(row.payload), "sha256": hashlib.sha256(row.payload).hexdigest()}


def _age(ts: float | None) -> str:
    if ts is None:
        return "-"
    seconds = max(0, int(time.time() - ts))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds}s"


def common_options(f: Any) -> Any:
    f = click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE")(f)
    return click.option(
        "--config",
        "config_path",
        type=click.Path(path_type=Path, dir_okay=False),
        required=True,
    )(f)


@click.group("outbox")
def outbox() -> None:
    """Inspect and manage the gateway's outbox."""


@outbox.command("stats")
@common_options
@json_option
def stats(config_path: Path, overrides: tuple[str, ...], as_json: bool) -> None:
    """Rows per state, space used, counters."""
    with open_outbox(config_path, overrides) as box:
        usage = box.usage()
        counters = box.counters()
        data: dict[str, Any] = {
            **box.counts(),
            "used_bytes": usage.used_bytes,
            "budget_bytes": usage.budget_bytes,
            "disk_free_bytes": usage.disk_free_bytes,
            "counters": counters,
        }
    if as_json:
        click.echo(json.dumps(data, sort_keys=True))
        return
    table = Table(title=f"outbox {box.path}", show_header=False)
    for key in (
        "pending",
        "in_flight",
        "rejected",
        "used_bytes",
        "budget_bytes",
        "disk_free_bytes",
    ):
        table.add_row(key, f"{data[key]:,}")
    for key, value in counters.items():
        table.add_row(key, f"{value:,}")
    Console().print(table)


@outbox.command("list")
@common_options
@json_option
@click.option("--state", type=click.Choice(["pending", "in_flight", "rejected"]))
@click.option("--limit", type=int, default=100, show_default=True)
def list_rows(
    config_path: Path, overrides: tuple[str, ...], as_json: bool, state: str | None, limit: int
) -> None:
    """Rows, oldest first (without payloads)."""
    with open_outbox(config_path, overrides) as box:
        rows = list(box.rows(state=state, limit=limit))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row_dict(row, with_payload=False), sort_keys=True))
        return
    table = Table("seq", "msg_id", "device", "kind", "state", "tries", "age", "reason")
    for r in rows:
        table.add_row(
            str(r.seq), r.msg_id, r.device, r.kind, r.state, str(r.attempts),
            _age(r.created_at), r.reason or "",
        )  # fmt: skip
    Console(width=200).print(table)


@outbox.command("show")
@common_options
@click.argument("key")
def show(config_path: Path, overrides: tuple[str, ...], key: str) -> None:
    """One row (by msg_id or seq), with its payload, as JSON."""
    with open_outbox(config_path, overrides) as box:
        row = box.get(key)
    if row is None:
        click.echo(f"no outbox row {key!r}", err=True)
        sys.exit(1)
    click.echo(json.dumps(row_dict(row), indent=2, sort_keys=True))


@outbox.command("requeue")
@common_options
@click.argument("key")
def requeue(config_path: Path, overrides: tuple[str, ...], key: str) -> None:
    """Send a rejected row again (after the cause was fixed)."""
    with open_outbox(config_path, overrides) as box:
        before = box.get(key)
        row = box.requeue(key)
    if row is None or before is None:
        click.echo(f"no outbox row {key!r}", err=True)
        sys.exit(1)
    click.echo(f"row {row.seq} {row.msg_id}: {before.state} -> {row.state}")


@outbox.command("export")
@common_options
def export(config_path: Path, overrides: tuple[str, ...]) -> None:
    """Every row as a JSON line, payload decoded."""
    with open_outbox(config_path, overrides) as box:
        for row in box.rows():
            click.echo(json.dumps(row_dict(row), sort_keys=True))
