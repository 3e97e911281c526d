"""The clock simulated wired devices stamp their records with (CT-80, NIBP, air puff)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


class SecondClock:
    """A device's naive local clock of one-second resolution that never repeats a stamp.

    Two records in one second would carry the same time; a real device of this kind stamps at
    most one record per second, so the next one gets the next second.
    """

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._last: datetime | None = None

    def __call__(self) -> datetime:
        now = datetime.now(self.zone).replace(tzinfo=None, microsecond=0)
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(seconds=1)
        self._last = now
        return now
