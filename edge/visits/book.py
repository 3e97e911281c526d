"""Visits open at stations, and the rule that binds a reading to one of them.

A visit is a pseudonymous id issued upstream (the reception tablet), opened and closed at one
station (a named set of devices used together). The gateway never holds a name or a
social-security number: ids that look like a French NIR are refused.

Binding rule (one rule, so every case below follows from it):

* A reading's measurement time is the device's clock corrected by the offset its driver
  measured, widened by the device's time uncertainty (clock resolution, offset error) into an
  interval.
* The reading binds to the visit of *its own station* whose open interval ``[opened_at,
  closed_at)`` overlaps that measurement interval - if there is exactly one such visit.
* None: published without a subject, and the caller raises an event. Never guessed.
* More than one (the interval straddles a hand-over between two patients): also none, with
  the reason "ambiguous". A wrong patient is worse than no patient.

Consequences, each tested: a record from a device's memory taken before a visit opened never
binds to it; a reading measured while a visit was open binds to it even if it arrives after the
visit closed (a measurement in progress at close keeps its patient); two stations never
cross-bind; a reading measured after the close binds to nothing.

Stored in SQLite (WAL, ``synchronous=FULL``) in the state directory, shared by the daemon and
the ``santebus visit`` commands.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS visits (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    station    TEXT NOT NULL,
    visit_id   TEXT NOT NULL,
    opened_at  REAL NOT NULL,
    closed_at  REAL,
    closed_by  TEXT,
    last_seen  REAL NOT NULL,
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
CREATE INDEX IF NOT EXISTS visits_station_open ON visits (station, opened_at);
CREATE UNIQUE INDEX IF NOT EXISTS visits_one_open ON visits (station) WHERE closed_at IS NULL;
"""

#: pseudonymous ids: letters, digits and ``._-``, 4 to 64 characters
_VISIT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{3,63}$")
#: a French NIR (social-security number): sex digit, 12 digits, optional 2-digit key
_NIR = re.compile(r"^[12][0-9]{2}[0-9]{2}(?:[0-9]{2}|2[AB])[0-9]{6}(?:[0-9]{2})?$")


class VisitError(ValueError):
    """A visit command that cannot be carried out (bad id, unknown station, nothing open)."""


@dataclass(frozen=True, slots=True)
class Visit:
    station: str
    visit_id: str
    opened_at: float
    closed_at: float | None = None
    closed_by: str | None = None


@dataclass(frozen=True, slots=True)
class Binding:
    """The visit a reading belongs to, or why it belongs to none."""

    visit: Visit | None
    reason: str = ""


def check_visit_id(visit_id: str) -> str:
    if _NIR.match(visit_id.replace(" ", "")):
        raise VisitError("visit id looks like a social-security number: refused, use a pseudonym")
    if not _VISIT_ID.match(visit_id):
        raise VisitError(
            f"visit id {visit_id!r} is not a pseudonym (4-64 letters, digits, '.', '_', '-')"
        )
    return visit_id


class VisitBook:
    """Open, close and look up visits; ``stations`` are the configured station names."""

    def __init__(self, path: Path, stations: set[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stations = stations
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 5000")  # CLI and daemon share the file
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        # Activity stamps (last_seen) only delay an idle close: a crash may lose the last ones
        # without harm, so they go through a second connection that does not fsync each write
        # (WAL + synchronous=NORMAL is still atomic and consistent, SQLite "WAL mode" 4).
        self._lazy = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._lazy.execute("PRAGMA busy_timeout = 5000")
        self._lazy.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        self._lazy.close()
        self._db.close()

    def start(self, station: str, visit_id: str, at: float | None = None) -> list[Visit]:
        """Open ``visit_id`` at ``station``; returns the visits this closed first.

        A station holds one visit at a time: a visit still open there is closed at the same
        instant (``closed_by = "superseded"``), so the two intervals never overlap.
        """
        self._known(station)
        check_visit_id(visit_id)
        now = time.time() if at is None else at
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            superseded = self._close_open(station, now, "superseded")
            self._db.execute(
                "INSERT INTO visits (station, visit_id, opened_at, last_seen) VALUES (?, ?, ?, ?)",
                (station, visit_id, now, now),
            )
        return superseded

    def stop(self, station: str, at: float | None = None, by: str = "operator") -> Visit:
        self._known(station)
        now = time.time() if at is None else at
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            closed = self._close_open(station, now, by)
        if not closed:
            raise VisitError(f"no visit is open at station {station!r}")
        return closed[0]

    def open_visits(self) -> list[Visit]:
        rows = self._db.execute(
            "SELECT station, visit_id, opened_at, closed_at, closed_by FROM visits"
            " WHERE closed_at IS NULL ORDER BY station"
        ).fetchall()
        return [Visit(*r) for r in rows]

    def history(self, station: str | None = None, limit: int = 50) -> list[Visit]:
        query = "SELECT station, visit_id, opened_at, closed_at, closed_by FROM visits"
        args: list[object] = []
        if station is not None:
            query += " WHERE station = ?"
            args.append(station)
        query += " ORDER BY opened_at DESC, seq DESC LIMIT ?"
        args.append(limit)
        return [Visit(*r) for r in self._db.execute(query, args).fetchall()]

    def close_idle(
        self, idle_after: float, now: float | None = None, station: str | None = None
    ) -> list[Visit]:
        """Close visits (of ``station``, or all) with no bound reading for ``idle_after`` s.

        The close time is the last activity plus ``idle_after``, not now, so that a late check
        never stretches a visit over readings it did not see.
        """
        stamp = time.time() if now is None else now
        closed = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            idle = self._db.execute(
                "SELECT seq, station, visit_id, opened_at, last_seen FROM visits"
                " WHERE closed_at IS NULL AND last_seen + ? <= ?"
                " AND station = coalesce(?, station)",
                (idle_after, stamp, station),
            ).fetchall()
            for seq, at_station, visit_id, opened_at, last_seen in idle:
                end = last_seen + idle_after
                self._db.execute(
                    "UPDATE visits SET closed_at = ?, closed_by = 'idle' WHERE seq = ?", (end, seq)
                )
                closed.append(Visit(at_station, visit_id, opened_at, end, "idle"))
        return closed

    def bind(
        self, station: str | None, earliest: float, latest: float, now: float | None = None
    ) -> Binding:
        """The visit a reading measured within ``[earliest, latest]`` at ``station`` belongs to."""
        if station is None:
            return Binding(None, "device belongs to no station")
        rows = self._db.execute(
            "SELECT seq, station, visit_id, opened_at, closed_at, closed_by FROM visits"
            " WHERE station = ? AND opened_at <= ? AND (closed_at IS NULL OR closed_at > ?)"
            " ORDER BY opened_at",
            (station, latest, earliest),
        ).fetchall()
        if not rows:
            return Binding(None, f"no visit open at station {station!r} at the measurement time")
        if len(rows) > 1:  # no visit ids in the reason: it goes to events and logs
            return Binding(
                None, f"ambiguous: the measurement time spans {len(rows)} visits (a hand-over)"
            )
        seq, *fields = rows[0]
        stamp = time.time() if now is None else now
        # activity keeps the visit from closing as idle; one stamp per second is plenty (the
        # readings of one device record arrive together)
        self._lazy.execute(
            "UPDATE visits SET last_seen = ? WHERE seq = ? AND last_seen < ? - 1.0",
            (stamp, seq, stamp),
        )
        return Binding(Visit(*fields))

    def _close_open(self, station: str, at: float, by: str) -> list[Visit]:
        rows = self._db.execute(
            "SELECT seq, station, visit_id, opened_at FROM visits"
            " WHERE station = ? AND closed_at IS NULL",
            (station,),
        ).fetchall()
        closed = []
        for seq, st, visit_id, opened_at in rows:
            end = max(at, opened_at)
            self._db.execute(
                "UPDATE visits SET closed_at = ?, closed_by = ? WHERE seq = ?", (end, by, seq)
            )
            closed.append(Visit(st, visit_id, opened_at, end, by))
        return closed

    def _known(self, station: str) -> None:
        if station not in self.stations:
            known = ", ".join(sorted(self.stations)) or "none configured"
            raise VisitError(f"unknown station {station!r} (stations: {known})")
