"""Modbus (RTU on RS-485, TCP): the RegisterClient port, register maps, the one pymodbus adapter.

Only :mod:`drivers.modbus.pymodbus_client` imports pymodbus; it is loaded lazily by
:func:`drivers.modbus.lines.open_client` when a ``modbus-rtu://`` or ``modbus-tcp://`` URL is
opened, so the pure parts (maps, decoding, polling) need no pymodbus.
"""
