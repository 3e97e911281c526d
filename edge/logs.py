"""Structured ``key=value`` log lines on stderr, for journald (which adds its own timestamp).

Log calls never carry patient identifiers: devices' patient-ID fields stay inside codecs.
"""

from __future__ import annotations

import logging
import sys
import time


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=INFO logger=edge.app msg="..."`` followed by the exception, if any."""

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        msg = record.getMessage().replace("\n", "\\n")
        line = (
            f"ts={ts}.{int(record.msecs):03d} level={record.levelname} logger={record.name} {msg}"
        )
        if record.exc_info:
            line += " exc=" + self.formatException(record.exc_info).replace("\n", "\\n")
        return line


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
