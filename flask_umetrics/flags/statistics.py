"""Experiment statistics from per-variant summaries (docs/flags-experiments.md, "Results").

Everything here is a pure function of ``(n, mean, sample stddev)`` per variant, so the results
endpoint can aggregate in SQL and never load per-subject values into Python.

Against the control C, for each treatment T:

* absolute lift ``Δ = μT - μC`` with Welch's unequal-variance t-test:
  ``SE = √(sT²/nT + sC²/nC)``, Welch-Satterthwaite ``df``, two-sided p-value
  ``2·t.sf(|Δ/SE|, df)`` and CI ``Δ ± t(1-alpha/2, df)·SE`` — the numbers
  ``scipy.stats.ttest_ind(t, c, equal_var=False)`` gives on the raw values;
* relative lift ``Δ/|μC|`` with delta-method
  ``SE = √(sT²/(nT μC²) + sC² μT²/(nC μC⁴))``, tested as gbstats' ``TwoSidedTTest`` does: the
  same Welch ``df``, p-value ``2·t.sf(|rel/SE|, df)`` and CI ``rel ± t(1-alpha/2, df)·SE``. The
  p-value and the CI come from one statistic and one quantile, so ``p < alpha`` exactly when
  the CI excludes 0;
* one-sided tests (``one_sided=True``, the alternative "treatment is greater than control"),
  gbstats' ``OneSidedTreatmentGreaterTTest``: p-value ``t.sf(stat, df)`` and the interval
  ``[estimate - t(1-alpha, df)·SE, +inf)``, for the absolute and the relative lift alike;
* chance to beat control ``Φ(rel/SE_rel)``: P(lift > 0) under a flat prior on the relative lift,
  normal approximation;
* Holm-Bonferroni adjusted p-values across treatments;
* SRM: chi-square goodness of fit of exposure counts against the configured weights.

Sequential testing (``sequential=True``) adds an always-valid confidence sequence, so results
may be looked at every day without inflating the error rate. It is the normal-mixture
confidence sequence of GrowthBook's gbstats 0.8.0 (``SequentialTwoSidedTTest``, Waudby-Smith et
al. 2023, arXiv:2103.06476v7 eq. 9, 155, 161). With ``N = nC + nT``, ``x = N·rho²`` and::

    rho²        = (-2 ln alpha + ln(1 - 2 ln alpha)) / tuning
    halfwidth = SE · √( (x + 1)/x · (ln(x + 1) - 2 ln alpha) )
    p         = min(1, √(x + 1) · exp(-rho² · N·(Δ/SE)² / (2(x + 1))))

``tuning`` (``sequential_tuning``; GrowthBook's default 5000) sets the mixture scale rho so that
the interval is narrowest when the total sample size N reaches ``tuning``: set it near the
expected number of exposed subjects. A poor choice only widens the interval; validity does not
depend on it. The mixture is asymptotic (normal): when a variant is so small that Student's t
interval is the wider one (only with a handful of subjects, Welch df below about 3.3 at
alpha = 0.05) the fixed-horizon interval is reported instead, because an always-valid interval
is never narrower than the fixed-horizon one, nor its p-value smaller. The sequential fields
are always two-sided (for the absolute and the relative lift), whatever ``one_sided`` says.

Degenerate inputs (an empty variant, n < 2, zero standard error, μC = 0, overflow) never raise
and never yield NaN or infinity: whatever cannot be computed is ``None``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral, Real
from typing import TYPE_CHECKING

from ..errors import ValidationError

if TYPE_CHECKING:
    from types import ModuleType


@functools.cache
def _stats() -> ModuleType:
    """``scipy.stats``, imported on first use: it costs ~130 MiB and most of a second, which
    every web worker would pay at start-up although only experiment results need it."""
    import scipy.stats

    module: ModuleType = scipy.stats
    return module


DEFAULT_SEQUENTIAL_TUNING = 5000.0
SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class VariantSummary:
    """One variant's per-subject metric values, summarised: all the statistics need."""

    key: str
    n: int  # exposed subjects
    mean: float
    stddev: float  # sample standard deviation (ddof=1); 0.0 when n < 2

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, Integral) or self.n < 0:
            raise ValidationError("n", f"variant {self.key!r}: must be an integer >= 0")
        if not _real(self.mean):
            raise ValidationError("mean", f"variant {self.key!r}: must be a finite number")
        if not _real(self.stddev) or self.stddev < 0:
            raise ValidationError("stddev", f"variant {self.key!r}: must be a finite number >= 0")


@dataclass(frozen=True)
class Comparison:
    """A treatment against control; a field is None when it cannot be computed.

    ``se``/``rel_se`` may be 0.0 (no variance); the intervals, p-values and chance to win are
    then None because a zero standard error supports no inference.
    """

    abs_lift: float | None
    se: float | None
    df: float | None
    p_value: float | None
    ci: tuple[float, float] | None  # one-sided: (low, inf)
    rel_lift: float | None
    rel_se: float | None
    rel_ci: tuple[float, float] | None  # one-sided: (low, inf)
    chance_to_win: float | None
    p_value_adjusted: float | None  # Holm-Bonferroni over all treatments (== p_value with one)
    sequential_ci: tuple[float, float] | None = None  # always-valid CI (sequential=True)
    sequential_p_value: float | None = None  # always-valid p-value (sequential=True)
    rel_p_value: float | None = None  # the relative lift's t-test, consistent with rel_ci
    rel_sequential_ci: tuple[float, float] | None = None
    rel_sequential_p_value: float | None = None


@dataclass(frozen=True)
class SRMResult:
    """Sample-ratio-mismatch check: a flagged experiment's assignment or logging is broken."""

    chi2: float
    p_value: float
    flagged: bool
    expected: list[float]  # expected exposures per variant under the configured weights


@dataclass(frozen=True)
class ExperimentStatistics:
    """Everything the results endpoint reports for one metric."""

    variants: list[VariantSummary]  # control first
    comparisons: list[Comparison | None]  # None for control
    srm: SRMResult | None  # None when there are no exposures


def welch(
    control: VariantSummary,
    treatment: VariantSummary,
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_SEQUENTIAL_TUNING,
    one_sided: bool = False,
) -> Comparison:
    """Compare one treatment with control; ``p_value_adjusted`` is the raw p-value here."""
    _check_alpha(alpha)
    _check_tuning(sequential_tuning)
    c, tr = control, treatment
    if c.n == 0 or tr.n == 0:
        return _empty()
    abs_lift = _finite(tr.mean - c.mean)
    rel_lift = _finite(abs_lift / abs(c.mean)) if abs_lift is not None and c.mean != 0 else None
    se = rel_se = df = None
    abs_test = rel_test = _NO_TEST
    chance = None
    seq_ci = seq_p = rel_seq_ci = rel_seq_p = None
    if c.n >= 2 and tr.n >= 2 and abs_lift is not None:
        vc = c.stddev * c.stddev / c.n
        vt = tr.stddev * tr.stddev / tr.n
        se = _finite(math.sqrt(vc + vt))
        df_denominator = vc * vc / (c.n - 1) + vt * vt / (tr.n - 1)
        if se is not None and se > 0 and df_denominator > 0:
            df = _finite((vc + vt) * (vc + vt) / df_denominator)
        abs_test = t_test(abs_lift, se, df, alpha=alpha, one_sided=one_sided)
        if rel_lift is not None:
            # √(sT²/(nT μC²) + sC² μT²/(nC μC⁴)), written so that no term divides by μC⁴
            ratio = tr.mean / c.mean
            rel_var = vt + c.stddev * c.stddev * ratio * ratio / c.n
            rel_se = _finite(math.sqrt(rel_var) / abs(c.mean)) if rel_var >= 0 else None
            rel_test = t_test(rel_lift, rel_se, df, alpha=alpha, one_sided=one_sided)
        if rel_lift is not None and rel_se is not None and rel_se > 0:
            chance = _finite(float(_stats().norm.cdf(rel_lift / rel_se)))
        if sequential:
            n = c.n + tr.n
            seq_p, seq_ci = _sequential(abs_lift, se, df, n, alpha, sequential_tuning)
            rel_seq_p, rel_seq_ci = _sequential(rel_lift, rel_se, df, n, alpha, sequential_tuning)
    return Comparison(
        abs_lift=abs_lift,
        se=se,
        df=df,
        p_value=abs_test[0],
        ci=abs_test[1],
        rel_lift=rel_lift,
        rel_se=rel_se,
        rel_ci=rel_test[1],
        chance_to_win=chance,
        p_value_adjusted=abs_test[0],
        sequential_ci=seq_ci,
        sequential_p_value=seq_p,
        rel_p_value=rel_test[0],
        rel_sequential_ci=rel_seq_ci,
        rel_sequential_p_value=rel_seq_p,
    )


TTestResult = tuple[float | None, tuple[float, float] | None]
_NO_TEST: TTestResult = (None, None)


def t_test(
    estimate: float | None,
    se: float | None,
    df: float | None,
    *,
    alpha: float = 0.05,
    one_sided: bool = False,
) -> TTestResult:
    """``(p-value, CI)`` of ``estimate`` against 0 from one t statistic and one quantile.

    Two-sided: ``2·t.sf(|e/se|, df)`` and ``e ± t(1-alpha/2, df)·se``; one-sided (alternative
    "greater"): ``t.sf(e/se, df)`` and ``[e - t(1-alpha, df)·se, inf)``. Either way ``p < alpha``
    exactly when the interval excludes 0. ``(None, None)`` when ``se`` is not positive.
    """
    if estimate is None or se is None or df is None or not se > 0:
        return _NO_TEST
    statistic = estimate / se
    t = _stats().t
    ci: tuple[float, float] | None
    if one_sided:
        p_value = _finite(float(t.sf(statistic, df)))
        low = estimate - float(t.ppf(1.0 - alpha, df)) * se
        ci = (low, math.inf) if math.isfinite(low) else None
    else:
        p_value = _finite(2.0 * float(t.sf(abs(statistic), df)))
        ci = _interval(estimate, float(t.ppf(1.0 - alpha / 2.0, df)) * se)
    # Both or neither (an interval that overflows): a p-value is never shown without its CI.
    return (p_value, ci) if p_value is not None and ci is not None else _NO_TEST


def _sequential(
    estimate: float | None,
    se: float | None,
    df: float | None,
    n: int,
    alpha: float,
    tuning: float,
) -> TTestResult:
    """The always-valid two-sided ``(p-value, CI)``, never narrower than the fixed-horizon one."""
    p_value, ci = t_test(estimate, se, df, alpha=alpha)
    if estimate is None or se is None or p_value is None or ci is None:
        return _NO_TEST
    cs = confidence_sequence(estimate, se, n, alpha=alpha, tuning=tuning)
    if cs is None:
        return _NO_TEST
    return max(cs[1], p_value), (min(cs[0][0], ci[0]), max(cs[0][1], ci[1]))


def confidence_sequence(
    estimate: float,
    se: float,
    n: int,
    *,
    alpha: float = 0.05,
    tuning: float = DEFAULT_SEQUENTIAL_TUNING,
) -> tuple[tuple[float, float], float] | None:
    """gbstats' always-valid ``(CI, p-value)`` for an estimate with standard error ``se``.

    ``n`` is the total sample size behind the estimate. Scale-free: works for absolute or
    relative lifts alike. None when ``se`` or ``n`` is not positive or a value overflows.
    """
    _check_alpha(alpha)
    _check_tuning(tuning)
    if not (_real(estimate) and _real(se)) or se <= 0 or n <= 0:
        return None
    log_alpha = math.log(alpha)
    rho2 = (-2.0 * log_alpha + math.log1p(-2.0 * log_alpha)) / tuning
    x = n * rho2  # N·rho²
    if not math.isfinite(x) or x <= 0:
        return None
    log1p_x = math.log1p(x)
    halfwidth = se * math.sqrt((x + 1.0) / x * (log1p_x - 2.0 * log_alpha))
    z = estimate / se
    log_p = 0.5 * log1p_x - rho2 * n * z * z / (2.0 * (x + 1.0))
    p_value = 1.0 if log_p >= 0 else math.exp(log_p)
    ci = _interval(estimate, halfwidth)
    if ci is None or not math.isfinite(p_value):
        return None
    return ci, p_value


def srm_check(
    counts: Sequence[int], weights: Sequence[float], *, threshold: float = SRM_THRESHOLD
) -> SRMResult | None:
    """Chi-square test of exposure counts against the weights (normalised to sum 1).

    Equals ``scipy.stats.chisquare(counts, f_exp=total * weights)`` over the variants with a
    positive weight (a zero-weight variant expects nobody and is left out, its expected count
    0.0). None when nobody was exposed or fewer than two variants have weight.
    """
    if len(counts) != len(weights):
        raise ValidationError("weights", "must have one weight per variant")
    for c in counts:
        if isinstance(c, bool) or not isinstance(c, Integral) or c < 0:
            raise ValidationError("counts", "must be integers >= 0")
    for w in weights:
        if not _real(w) or w < 0:
            raise ValidationError("weights", "must be finite numbers >= 0")
    weight_sum = math.fsum(weights)
    if weight_sum <= 0:
        raise ValidationError("weights", "must not all be 0")
    if not (_real(threshold) and 0 < threshold < 1):
        raise ValidationError("threshold", "must be between 0 and 1")
    used = [i for i, w in enumerate(weights) if w > 0]
    total = sum(int(counts[i]) for i in used)
    if total == 0 or len(used) < 2:
        return None
    expected = [total * (w / weight_sum) if w > 0 else 0.0 for w in weights]
    stat = math.fsum(
        (counts[i] - expected[i]) * (counts[i] - expected[i]) / expected[i] for i in used
    )
    p_value = float(_stats().chi2.sf(stat, len(used) - 1))
    return SRMResult(chi2=stat, p_value=p_value, flagged=p_value < threshold, expected=expected)


def holm_bonferroni(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (monotone, capped at 1); None entries are skipped."""
    ranked: list[tuple[float, int]] = []
    for i, p in enumerate(p_values):
        if p is None:
            continue
        if not _real(p) or not 0 <= p <= 1:
            raise ValidationError("p_values", "must be numbers between 0 and 1, or None")
        ranked.append((float(p), i))
    ranked.sort()
    adjusted: list[float | None] = [None] * len(p_values)
    m = len(ranked)
    running = 0.0
    for rank, (p, i) in enumerate(ranked):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def analyze(
    variants: Sequence[VariantSummary],
    weights: Sequence[float],
    *,
    alpha: float = 0.05,
    sequential: bool = False,
    sequential_tuning: float = DEFAULT_SEQUENTIAL_TUNING,
    one_sided: bool = False,
) -> ExperimentStatistics:
    """Compare every treatment with the first (control) variant and check the sample ratio."""
    if not variants:
        raise ValidationError("variants", "needs at least the control variant")
    keys = [v.key for v in variants]
    if len(set(keys)) != len(keys):
        raise ValidationError("variants", "variant keys must be unique")
    if len(weights) != len(variants):
        raise ValidationError("weights", "must have one weight per variant")
    _check_alpha(alpha)
    _check_tuning(sequential_tuning)
    srm = srm_check([v.n for v in variants], weights)
    control = variants[0]
    raw = [
        welch(
            control,
            v,
            alpha=alpha,
            sequential=sequential,
            sequential_tuning=sequential_tuning,
            one_sided=one_sided,
        )
        for v in variants[1:]
    ]
    adjusted = holm_bonferroni([c.p_value for c in raw])
    comparisons: list[Comparison | None] = [None]
    comparisons += [replace(c, p_value_adjusted=a) for c, a in zip(raw, adjusted, strict=True)]
    return ExperimentStatistics(variants=list(variants), comparisons=comparisons, srm=srm)


def _empty() -> Comparison:
    return Comparison(None, None, None, None, None, None, None, None, None, None)


def _interval(center: float, halfwidth: float) -> tuple[float, float] | None:
    lo, hi = center - halfwidth, center + halfwidth
    return (lo, hi) if math.isfinite(lo) and math.isfinite(hi) else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _real(value: object) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_alpha(alpha: float) -> None:
    if not (_real(alpha) and 0 < alpha < 1):
        raise ValidationError("alpha", "must be between 0 and 1")


def _check_tuning(tuning: float) -> None:
    if not (_real(tuning) and tuning > 0):
        raise ValidationError("sequential_tuning", "must be a finite number > 0")
