"""Physiological simulators with known truth, for judging the signal core (issue #6).

:mod:`.bp` simulates oscillometric cuff records (Babbs-type arterial/cuff model, or the simpler
asymmetric-Gaussian envelope model of :mod:`.envelope`); :mod:`.iop` simulates air-puff
tonometer records (plenum pressure + applanation light); :mod:`.cohort` draws deterministic
synthetic cohorts of both. NumPy only; nothing here imports :mod:`edge`.
"""
