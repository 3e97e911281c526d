"""``santebus visit`` on a real visit book, with stations set on the command line."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from edge.cli import main

EXAMPLE = Path(__file__).parents[2] / "examples" / "simulated-bus.toml"


def _run(tmp_path: Path, *args: str) -> tuple[int, str]:
    config = [
        "--config", str(EXAMPLE),
        "--set", f"gateway.state_dir={tmp_path / 'state'}",
        "--set", 'stations.eye.devices=["tono-1"]',
    ]  # fmt: skip
    result = CliRunner().invoke(main, ["visit", *args, *config])
    return result.exit_code, result.output


def test_start_list_stop_round_trip(tmp_path: Path) -> None:
    assert _run(tmp_path, "start", "--station", "eye", "--visit", "V-0001") == (
        0,
        "opened V-0001 at eye\n",
    )
    code, out = _run(tmp_path, "start", "--station", "eye", "--visit", "V-0002")
    assert (code, out) == (0, "closed V-0001 at eye (superseded)\nopened V-0002 at eye\n")
    code, out = _run(tmp_path, "list", "--json")
    assert code == 0
    assert [(v["station"], v["visit_id"]) for v in json.loads(out)] == [("eye", "V-0002")]
    assert _run(tmp_path, "stop", "--station", "eye") == (0, "closed V-0002 at eye\n")
    code, out = _run(tmp_path, "list", "--json", "--all")
    assert [(v["visit_id"], v["closed_by"]) for v in json.loads(out)] == [
        ("V-0002", "operator"),
        ("V-0001", "superseded"),
    ]
    code, out = _run(tmp_path, "list", "--all")
    assert code == 0
    assert "superseded" in out


def test_refusals_name_the_problem_and_exit_non_zero(tmp_path: Path) -> None:
    code, out = _run(tmp_path, "start", "--station", "eye", "--visit", "185057800608436")
    assert code == 1
    assert "social-security number" in out
    code, out = _run(tmp_path, "start", "--station", "lab", "--visit", "V-0001")
    assert code == 1
    assert "unknown station 'lab' (stations: eye)" in out
    code, out = _run(tmp_path, "stop", "--station", "eye")
    assert code == 1
    assert "no visit is open at station 'eye'" in out
