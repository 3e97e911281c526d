"""Limits of the oscillometric analysis, with the reason for each default.

:class:`BpSettings` is re-exported by :mod:`edge.signal.oscillometry` (its public home); it lives
here so that the helper modules (deflation, beats, quality, envelope) can read it without an
import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BpSettings:
    """Limits for :func:`edge.signal.oscillometry.analyze_bp` (mmHg, s, Hz, fractions)."""

    # -- record and deflation ---------------------------------------------------------------
    #: the measuring range (deflation, after settling, before the dump) must last this long:
    #: 8 beats (see min_beats) at 80 /min take 6 s; a shorter range cannot hold an envelope
    min_record_s: float = 6.0
    #: above 10 mmHg/s the beats are > 10 mmHg apart at 60 /min, too coarse to place SBP/DBP
    #: within the +-5 mmHg the validation protocols (ISO 81060-2) judge by; common NIBP modules
    #: deflate at 3-8 mmHg/s (Geddes et al., Ann Biomed Eng 1982;10:271-280)
    max_deflation_rate: float = 10.0
    #: a fall faster than this is the final dump, not the measuring deflation
    dump_rate: float = 40.0
    #: after the inflation peak the valve and the cuff settle; skip this much
    settle_s: float = 1.0
    #: beats with the cuff below this pressure are ignored (no artery is compressed there)
    min_cuff_pressure: float = 15.0
    #: uneven deflation: 90th percentile of the local-rate deviation from its smooth trend, as a
    #: fraction of the median rate. A passive bleed valve (rate falling smoothly with pressure)
    #: and respiratory baseline swings stay well below; stalls and valve steps exceed it
    max_rate_unevenness: float = 0.6
    #: samples stuck at the record's extreme value (a rail / flat top) for this long in total
    clip_min_s: float = 0.1
    # -- beats ------------------------------------------------------------------------------
    #: at least 8 beats in the envelope (issue #6): a few beats on each flank to place the
    #: level crossings the readings use (the benchmark's model fit has 6 free parameters, 3
    #: more held by priors, and must stay over-determined after outliers are discarded)
    min_beats: int = 8
    #: a beat's foot-to-peak amplitude must exceed this multiple of the in-band noise RMS
    min_beat_snr: float = 5.0
    #: oscillation band for beat detection: 0.6 Hz keeps the fundamental down to 36 /min;
    #: 10 Hz keeps the upstroke and drops most noise
    band_low_hz: float = 0.6
    band_high_hz: float = 10.0
    #: amplitudes are measured in a wider band: near and above systolic the artery opens only at
    #: the top of each pulse, and a 10 Hz low-pass would shave these short spikes
    amplitude_high_hz: float = 20.0
    # -- rhythm -----------------------------------------------------------------------------
    #: irregular rhythm: an interval deviating by >= 25 % from the mean interval (the
    #: irregular-heartbeat definition printed in upper-arm monitor manuals, e.g. Omron's) in
    #: >= 20 % of the intervals (issue #6)
    irregular_deviation: float = 0.25
    irregular_fraction: float = 0.20
    #: irregular rhythm, second rule: SD/mean of the intervals at least this. Wiesel et al.
    #: (Am J Hypertens 2009;22:848-852) flag atrial fibrillation at 0.06 on intervals a monitor
    #: measures over three readings; one cuff record's intervals are coarser (respiratory sinus
    #: arrhythmia and detection jitter reach 0.08 in sinus rhythm), hence 0.10
    irregular_cv: float = 0.10
    # -- artefacts --------------------------------------------------------------------------
    #: the cuff trend may not rise faster than this during deflation (only movement does that)
    max_rise_rate: float = 1.0
    #: a beat whose amplitude departs from the median of its 5 neighbours by this factor
    amplitude_outlier_ratio: float = 1.8
    #: a beat larger than this multiple of the median of its 9 neighbours is movement: a
    #: burst lifts the 5-beat median above but not the 9-beat one (a record in the demo had a
    #: 2 s, 9 Hz shake 13 times the pulse taken for the envelope maximum)
    burst_ratio: float = 3.0
    #: a beat whose shape correlates less than this with the median beat
    min_shape_correlation: float = 0.5
    #: refuse when more than this fraction of the beats in the measuring range is corrupted
    max_motion_fraction: float = 0.35
    # -- envelope ---------------------------------------------------------------------------
    #: the envelope at the start (high pressure) must have fallen below this fraction of its
    #: maximum, and at the end (low pressure) below the second one, or the cuff did not pass
    #: SBP / DBP. SBP ratios reported in the literature lie in 0.4-0.7, DBP ratios 0.5-0.9
    #: (Liu et al., Ann Biomed Eng 2013;41:587-597)
    max_start_ratio: float = 0.8
    max_end_ratio: float = 0.95
    #: flags: quality below this, beats' RMS about the envelope (over its maximum) above this
    low_quality: float = 0.5
    poor_fit_residual: float = 0.15
    # -- fixed-ratio baseline (Geddes et al. 1982; Sapinski 1996) ---------------------------
    systolic_ratio: float = 0.55
    diastolic_ratio: float = 0.85
    # -- processing -------------------------------------------------------------------------
    #: the record is decimated to about this rate after anti-alias filtering (0.4 x the rate)
    work_rate_hz: float = 200.0


#: the defaults (a frozen value, safe to share as a default argument)
DEFAULT_SETTINGS = BpSettings()
