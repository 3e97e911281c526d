"""The vehicle around the examinations, read over Modbus: cabin climate, cold chain, power.

:mod:`.modbus` polls the units and turns their values into telemetry, :mod:`.climate` gates
measurements on their devices' operating conditions, :mod:`.coldchain` follows the medicine
fridge's excursions and :mod:`.power` stops the daemon cleanly before the battery gives out.
"""
