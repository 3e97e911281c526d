"""Cold-chain excursions of a medicine fridge (vaccines, insulin: 2-8 Cel).

An excursion starts at the first sample outside ``[low, high]`` and ends at the first sample
back inside by ``hysteresis`` (so a probe hovering at the limit makes one excursion, not
twenty). Both ends raise an event; the end carries what a pharmacist needs to decide whether
the stock is still usable (WHO, "Temperature sensitivity of vaccines", 2014, and the usual
fridge-logger reports): start, end, duration, and the peak (the extreme temperature reached).
A daemon restart in the middle of an excursion starts a new one at the next sample (the
logger's own alarm bits travel in the telemetry meanwhile).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from edge.config_modbus import ColdChainSettings
from edge.events import Events


@dataclass(slots=True)
class Excursion:
    """The excursion in progress: when it began, on which side, the extreme so far."""

    start: datetime
    side: str  # "high" | "low"
    peak: float
    logger_alarm: bool = False


class ColdChain:
    """Follows one fridge's temperature; raises ``coldchain.excursion_*`` events."""

    def __init__(self, device_id: str, settings: ColdChainSettings, events: Events) -> None:
        self.device_id = device_id
        self.settings = settings
        self.events = events
        self.current: Excursion | None = None
        self.excursions = 0

    def update(self, temperature: float, at: datetime, logger_alarm: bool = False) -> None:
        """Take one sample (Cel, its time, the logger's own alarm bits set); events on change."""
        s, cur = self.settings, self.current
        if cur is None:
            side = "high" if temperature > s.high else "low" if temperature < s.low else None
            if side is None:
                return
            self.current = Excursion(at, side, temperature, logger_alarm)
            self.excursions += 1
            self.events.raise_event(
                "coldchain.excursion_started",
                "warning",
                self.device_id,
                start=at.isoformat(timespec="seconds"),
                side=side,
                temperature_c=round(temperature, 2),
                limit_c=s.high if side == "high" else s.low,
            )
            return
        cur.logger_alarm |= logger_alarm
        if cur.side == "high":
            cur.peak = max(cur.peak, temperature)
            back = temperature <= s.high - s.hysteresis
        else:
            cur.peak = min(cur.peak, temperature)
            back = temperature >= s.low + s.hysteresis
        if not back:
            return
        self.current = None
        self.events.raise_event(
            "coldchain.excursion_ended",
            "warning",
            self.device_id,
            start=cur.start.isoformat(timespec="seconds"),
            end=at.isoformat(timespec="seconds"),
            duration_s=round((at - cur.start).total_seconds(), 1),
            side=cur.side,
            peak_c=round(cur.peak, 2),
            limit_c=s.high if cur.side == "high" else s.low,
            logger_alarm=cur.logger_alarm,
        )
