"""Simulated hardware and a reference backend, for CI and for anyone without the bus.

Simulators reuse the production codecs from :mod:`drivers` and never import :mod:`edge`;
production code reaches this package only lazily, when a simulator command is selected.
"""
