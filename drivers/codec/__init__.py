"""Sans-IO helpers shared by device codecs: framing, checksums, number formats."""
