"""One package per device model: ``codec`` (pure), ``driver`` (wires codec to a transport)."""
