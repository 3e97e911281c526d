"""Simulated Bluetooth LE health peripherals on Bumble's virtual radio.

:mod:`simulators.ble.link` runs a Bumble ``LocalLink`` in this process and serves the
gateway's controller over TCP HCI; :mod:`simulators.ble.profiles` declares the health devices
(blood pressure, glucose, thermometer, weight scale, pulse oximeter) as data;
:mod:`simulators.ble.peripheral` and :mod:`simulators.ble.server` put one on the radio, with
:mod:`simulators.ble.clock` (its Current Time) and :mod:`simulators.ble.glucometer` (the
glucose meter's Record Access Control Point); :mod:`simulators.ble.device` makes one measure
(:mod:`simulators.ble.draws`) and keep the ledger. ``python -m simulators.ble.serve`` runs a
monitor for a gateway in another process, which reaches it through
:class:`drivers.ble.bumble_backend.BumbleBle` and bleak's public API.
"""
