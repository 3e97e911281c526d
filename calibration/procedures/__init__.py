"""Calibration and verification procedures: bench steps against a reference, as data + a record.

Each procedure drives a device under test and a reference through ports (drivers), asks the
technician through an :class:`~calibration.procedures.base.Operator` (a terminal with prompts
and progress bars, or a script for CI), and returns the points and checks from which the
calibration record is made (calibration/records.py). They never write files: the CLI
(edge/cli_calibrate.py) stores the record and renders the report.
"""
