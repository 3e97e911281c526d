"""Bluetooth LE health devices: GATT health-profile codecs (pure) and the one bleak adapter."""
