"""Log lines: key=value, journald priority prefix under systemd."""

from __future__ import annotations

import logging

from edge.logs import KeyValueFormatter


def _record(level: int) -> logging.LogRecord:
    return logging.LogRecord(
        "edge.x", level, __file__, 1, "device lost device=%s", ("tono-1",), None
    )


def test_plain_lines_are_key_value() -> None:
    line = KeyValueFormatter().format(_record(logging.WARNING))
    assert line.startswith("ts=")
    assert line.endswith("level=WARNING logger=edge.x device lost device=tono-1")


def test_journald_lines_carry_the_syslog_priority() -> None:
    fmt = KeyValueFormatter(journald=True)
    assert fmt.format(_record(logging.ERROR)).startswith("<3>ts=")
    assert fmt.format(_record(logging.WARNING)).startswith("<4>ts=")
    assert fmt.format(_record(logging.INFO)).startswith("<6>ts=")
