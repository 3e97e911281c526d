"""Simulated Bluetooth LE health peripherals on Bumble's virtual radio.

:mod:`simulators.ble.link` runs a Bumble ``LocalLink`` in this process and serves the
gateway's controller over TCP HCI; :mod:`simulators.ble.peripheral` puts health devices on it;
``python -m simulators.ble.serve`` runs both for a gateway in another process, which reaches
them through :class:`drivers.ble.bumble_backend.BumbleBle` and bleak's public API.
"""
