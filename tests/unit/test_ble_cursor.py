"""The durable glucose record cursor (drivers/ble/cursor.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from drivers.ble.cursor import RecordCursor

METER = "D0:5A:4E:B9:00:02"


def test_the_cursor_survives_a_restart_and_never_goes_back(tmp_path: Path) -> None:
    cursor = RecordCursor(tmp_path, "gluco-1", METER)
    assert cursor.sequence is None
    cursor.advance(7)
    cursor.advance(5)  # an older record committed late changes nothing
    assert cursor.sequence == 7
    assert RecordCursor(tmp_path, "gluco-1", METER.lower()).sequence == 7
    assert not list(tmp_path.glob("*.tmp"))
    cursor.reset()
    assert RecordCursor(tmp_path, "gluco-1", METER).sequence is None


def test_another_meter_or_an_unreadable_file_starts_from_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    RecordCursor(tmp_path, "gluco-1", METER).advance(40)
    caplog.set_level(logging.WARNING)
    assert RecordCursor(tmp_path, "gluco-1", "D0:5A:4E:B9:00:99").sequence is None
    assert "record cursor of another device" in caplog.text
    (tmp_path / "gluco-1.json").write_text('{"address": "D0:5A:4E:B9:00:02", "seq')
    assert RecordCursor(tmp_path, "gluco-1", METER).sequence is None
    (tmp_path / "gluco-1.json").write_text('{"address": "D0:5A:4E:B9:00:02", "sequence": 70000}')
    assert RecordCursor(tmp_path, "gluco-1", METER).sequence is None
    assert "holds no uint16" in caplog.text
