"""Device library: transports, codecs and drivers for the bus's measurement devices.

This package knows nothing of MQTT, the outbox, visits or FHIR (enforced by import-linter).
"""
