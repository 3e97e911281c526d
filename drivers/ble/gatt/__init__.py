"""Pure parsers and encoders of the Bluetooth SIG health-profile characteristics (no I/O)."""
