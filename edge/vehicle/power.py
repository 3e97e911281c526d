"""The bus battery: warn when it runs low, stop the daemon cleanly before it gives out.

The power system (a Victron GX over Modbus TCP) reports state of charge, voltage and the
active AC input. Away from shore power, a state of charge at ``warn_soc`` raises
``power.battery_low``; at ``stop_soc`` - or a voltage at ``stop_voltage``, since a worn
battery's state of charge is optimistic - for ``confirm`` samples in a row, ``power.shutdown``
is raised and the daemon is asked to stop: outbox committed and closed, devices released,
exit status 0 so systemd does not restart it (Restart=on-failure) on a dying battery.
"""

from __future__ import annotations

from collections.abc import Callable

from edge.config_modbus import PowerSettings
from edge.events import Events

#: com.victronenergy.system /Ac/ActiveIn/Source: 1 grid, 2 generator, 3 shore; 0 unknown,
#: 240 not connected (Victron CCGX Modbus TCP register list, register 826)
_ON_AC = {1, 2, 3}


class PowerWatch:
    """Follows the power system's samples; warns, then asks the daemon to stop (``stop``)."""

    def __init__(
        self,
        device_id: str,
        settings: PowerSettings,
        events: Events,
        stop: Callable[[str], None],
    ) -> None:
        self.device_id = device_id
        self.settings = settings
        self.events = events
        self.stop = stop
        self.warned = False
        self.low_samples = 0
        self.stopping = False
        self.on_ac: bool | None = None

    def update(self, soc: float, voltage: float, source: float) -> None:
        """One sample: state of charge %, battery voltage V, active AC input (register 826)."""
        s = self.settings
        on_ac = int(source) in _ON_AC
        if self.on_ac is not None and on_ac != self.on_ac:
            self.events.raise_event(
                "power.ac_connected" if on_ac else "power.ac_disconnected",
                "info",
                self.device_id,
                soc_pct=soc,
                voltage_v=voltage,
            )
        self.on_ac = on_ac
        if on_ac or soc > s.warn_soc + 5:
            self.warned = False  # re-armed: charging, or well above the threshold again
        if on_ac:
            self.low_samples = 0
            return
        if soc <= s.warn_soc and not self.warned:
            self.warned = True
            self.events.raise_event(
                "power.battery_low", "warning", self.device_id, soc_pct=soc, voltage_v=voltage
            )
        critical = soc <= s.stop_soc or voltage <= s.stop_voltage
        self.low_samples = self.low_samples + 1 if critical else 0
        if self.low_samples >= s.confirm and not self.stopping:
            self.stopping = True
            self.events.raise_event(
                "power.shutdown",
                "critical",
                self.device_id,
                soc_pct=soc,
                voltage_v=voltage,
                stop_soc_pct=s.stop_soc,
                stop_voltage_v=s.stop_voltage,
            )
            self.stop(f"battery low: {soc:.0f} % at {voltage:.2f} V, off shore power")
