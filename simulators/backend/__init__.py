"""A reference backend: ingest Observations, store them by message id, then acknowledge."""
