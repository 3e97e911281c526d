"""Device calibration: pure models, fits and records (issue #8 builds them; empty until then)."""
