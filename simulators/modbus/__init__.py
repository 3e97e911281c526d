"""Simulated Modbus devices: an RS-485 line of ptys, pymodbus servers, and their value models.

:mod:`simulators.modbus.rtu_line` is the wire (two pty pairs and a relay that runs at the line's
baud rate and injects faults per frame), :mod:`simulators.modbus.server` the slaves (pymodbus
servers built from the production register maps), :mod:`simulators.modbus.dynamics` what they
measure. pymodbus is imported by this package only (and by drivers/modbus/pymodbus_client.py),
and only when a Modbus device is simulated: :mod:`simulators.modbus.scenario` is pure data.
"""
