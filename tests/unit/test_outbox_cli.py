"""``santebus outbox`` operator commands on a real outbox file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edge.cli import main
from edge.outbox import NewRow, Outbox

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"


def _setup(tmp_path: Path) -> list[str]:
    box = Outbox(tmp_path / "state" / "outbox.sqlite")
    box.add([NewRow(f"id-{i}", "tono-1", "t", json.dumps({"n": i}).encode()) for i in range(3)])
    box.reject("id-1", "broker refused: Not authorized (135)")
    box.close()
    return ["--config", str(EXAMPLE), "--set", f"gateway.state_dir={tmp_path / 'state'}"]


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["outbox", *args])
    return result.exit_code, result.output


def test_stats_json_and_table(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    code, out = _run("stats", "--json", *args)
    data = json.loads(out)
    assert (code, data["pending"], data["rejected"], data["counters"]) == (
        0,
        2,
        1,
        {"rejected_rows": 1},
    )
    code, out = _run("stats", *args)
    assert code == 0
    assert "rejected" in out
    assert "budget_bytes" in out


def test_list_show_requeue_export(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    code, out = _run("list", "--json", "--state", "rejected", *args)
    (row,) = [json.loads(line) for line in out.splitlines()]
    assert (code, row["msg_id"], row["reason"]) == (
        0,
        "id-1",
        "broker refused: Not authorized (135)",
    )
    code, out = _run("list", *args)
    assert code == 0
    assert "id-2" in out
    code, out = _run("show", "id-1", *args)
    assert json.loads(out)["payload"] == {"n": 1}
    code, out = _run("requeue", "id-1", *args)
    assert (code, out.strip()) == (0, "row 2 id-1: rejected -> pending")
    code, out = _run("export", *args)
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["pending"] * 3


def test_unknown_row_and_missing_outbox_are_clear_errors(tmp_path: Path) -> None:
    args = _setup(tmp_path)
    code, out = _run("show", "nope", *args)
    assert (code, out.strip()) == (1, "no outbox row 'nope'")
    code, out = _run(
        "stats", "--config", str(EXAMPLE), "--set", f"gateway.state_dir={tmp_path / 'x'}"
    )
    assert code == 1
    assert "no outbox at" in out
