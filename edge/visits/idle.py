"""The daemon's task that closes visits left open with no activity (``idle_close_s``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from edge.config import StationSection
from edge.events import Events
from edge.visits.book import VisitBook


async def close_idle(
    visits: VisitBook, stations: Mapping[str, StationSection], events: Events
) -> None:
    """Close visits idle past their station's ``idle_close_s``; until cancelled.

    Checked once a minute, or four times per the shortest idle time if that is shorter, so
    a visit closes at most a quarter late.
    """
    shortest = min(s.idle_close_s for s in stations.values())
    period = max(0.5, min(60.0, shortest / 4))
    while True:
        await asyncio.sleep(period)
        for station, section in stations.items():
            for _ in visits.close_idle(section.idle_close_s, station=station):
                events.raise_event("visit.closed", "info", None, station=station, by="idle")
