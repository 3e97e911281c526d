"""Structured ``key=value`` log lines on stderr, for journald (which adds its own timestamp).

Log calls never carry patient identifiers: devices' patient-ID fields stay inside codecs.
"""

from __future__ import annotations

import logging
import os
import sys
import time

#: sd-daemon(3) priority prefixes, understood by journald on a service's stderr
_PRIORITY = {"DEBUG": 7, "INFO": 6, "WARNING": 4, "ERROR": 3, "CRITICAL": 2}


class KeyValueFormatter(logging.Formatter):
    """``ts=... level=INFO logger=edge.app msg="..."`` followed by the exception, if any.

    Under systemd (``JOURNAL_STREAM`` set) each line starts with ``<N>`` so journald stores the
    right priority and ``journalctl -p warning`` works.
    """

    def __init__(self, journald: bool = False) -> None:
        super().__init__()
        self.journald = journald

    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        msg = record.getMessage().replace("\n", "\\n")
        line = (
            f"ts={ts}.{int(record.msecs):03d} level={record.levelname} logger={record.name} {msg}"
        )
        if record.exc_info:
            line += " exc=" + self.formatException(record.exc_info).replace("\n", "\\n")
        if self.journald:
            line = f"<{_PRIORITY.get(record.levelname, 6)}>{line}"
        return line


def setup(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter(journald=bool(os.environ.get("JOURNAL_STREAM"))))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
