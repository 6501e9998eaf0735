"""How many subjects an experiment needs, and how long that takes at the traffic it gets
(docs/flags-experiments.md, "Sample size").

The textbook two-sample formula for detecting a relative change ``mde`` of the control's mean
with a test at ``alpha`` (two-sided, or one-sided) and the given power::

    n per variant = (z(1-alpha/2) + z(power))² · (varC + varT) / (mde·|μC|)²

with ``z(1-alpha)`` for a one-sided test. For a conversion metric with baseline rate ``p`` the
variances are ``p(1-p)`` and ``p'(1-p')`` with ``p' = p·(1+mde)``; for a mean metric both are
the control's observed variance. The duration divides what each variant still lacks by its
share of the subjects exposed per day so far; the slowest variant sets it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

from ..errors import ValidationError

DEFAULT_MDE = 0.05
DEFAULT_POWER = 0.8
_DAY_MICROS = 86_400 * 1_000_000


@dataclass(frozen=True)
class SampleSize:
    """The planned sample of an experiment and where it stands."""

    per_variant: int  # subjects each variant needs
    progress: float  # the least-filled variant's share of ``per_variant``, at most 1
    exposed_per_day: float | None  # subjects exposed per day so far (None: no time elapsed)
    days_remaining: float | None  # at that traffic (None: no traffic to extrapolate)


def required_per_variant(
    baseline: float,
    stddev: float,
    mde: float,
    *,
    conversion: bool,
    alpha: float = 0.05,
    power: float = DEFAULT_POWER,
    one_sided: bool = False,
) -> int | None:
    """Subjects per variant to detect a relative change ``mde`` of ``baseline``; None when no
    sample can (a zero baseline, a conversion rate that ``mde`` would push past 1, no variance)."""
    for name, value, low, high in (("alpha", alpha, 0, 1), ("power", power, 0, 1)):
        if not (math.isfinite(value) and low < value < high):
            raise ValidationError(name, f"must be between {low} and {high}")
    if not (math.isfinite(mde) and mde > 0):
        raise ValidationError("mde", "must be a number > 0")
    effect = mde * abs(baseline)
    if conversion:
        treated = baseline * (1 + mde)
        if not (0 < baseline < 1 and 0 < treated < 1):
            return None
        variance = baseline * (1 - baseline) + treated * (1 - treated)
    else:
        variance = 2 * stddev * stddev
    if not (effect > 0 and variance > 0):
        return None
    normal = NormalDist()
    z_alpha = normal.inv_cdf(1 - alpha if one_sided else 1 - alpha / 2)
    n = (z_alpha + normal.inv_cdf(power)) ** 2 * variance / (effect * effect)
    return math.ceil(n) if math.isfinite(n) else None


def plan(
    per_variant: int,
    exposed: Sequence[int],
    weights: Sequence[float],
    *,
    first_exposure_ts: int | None,
    now_ts: int,
) -> SampleSize:
    """Progress and remaining days for ``per_variant`` subjects in every weighted variant.

    ``exposed`` and ``weights`` are per variant (weights normalised here); timestamps are
    microseconds since the epoch. Traffic is the subjects exposed since the first exposure.
    """
    weighted = [(n, w) for n, w in zip(exposed, weights, strict=True) if w > 0]
    total_weight = math.fsum(w for _, w in weighted)
    progress = min((n / per_variant for n, _ in weighted), default=0.0)
    per_day = None
    if first_exposure_ts is not None and now_ts > first_exposure_ts:
        per_day = sum(exposed) * _DAY_MICROS / (now_ts - first_exposure_ts)
    days = None
    if per_day is not None and per_day > 0 and total_weight > 0:
        days = max(max(0, per_variant - n) / (per_day * w / total_weight) for n, w in weighted)
    return SampleSize(
        per_variant=per_variant,
        progress=min(1.0, progress),
        exposed_per_day=per_day,
        days_remaining=days,
    )
