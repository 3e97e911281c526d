"""Device readings -> Measurements -> HL7 FHIR R4 Observations -> outbox rows."""
