"""Experiment results: per-variant metrics from SQL, then the statistics
(docs/flags-experiments.md, "Results")."""

from __future__ import annotations

import math
import time
from typing import Any

from ..queries.connection import metadata_connection
from .metrics import ExposureCounts, exposure_counts, metric_summaries
from .model import Experiment, MetricSpec
from .sample_size import DEFAULT_POWER, plan, required_per_variant
from .statistics import ExperimentStatistics, SRMResult, VariantSummary, analyze, srm_check
from .verdict import verdict


def _pair(value: tuple[float, float] | None) -> list[float | None] | None:
    """An interval as JSON: a one-sided interval's open end (infinite) is null."""
    if value is None:
        return None
    return [v if math.isfinite(v) else None for v in value]


_COMPARISON_FIELDS = (
    "abs_lift",
    "p_value",
    "p_value_adjusted",
    "ci",
    "rel_lift",
    "rel_ci",
    "rel_p_value",
    "chance_to_win",
    "sequential_ci",
    "sequential_p_value",
    "rel_sequential_ci",
    "rel_sequential_p_value",
)


def _row(key: str, exposures: int, **values: Any) -> dict[str, Any]:
    """One variant's table row; what is not given (control's comparisons) is null."""
    row: dict[str, Any] = {"key": key, "exposures": exposures, "total": None, "mean": None}
    row["stddev"] = None
    row.update(dict.fromkeys(_COMPARISON_FIELDS))
    row.update(values)
    return row


def _variant_rows(stats: ExperimentStatistics, totals: dict[str, float]) -> list[dict[str, Any]]:
    rows = []
    for summary, comparison in zip(stats.variants, stats.comparisons, strict=True):
        values: dict[str, Any] = {
            "total": totals.get(summary.key, 0.0),
            "mean": summary.mean,
            "stddev": summary.stddev,
        }
        if comparison is not None:
            values.update(
                abs_lift=comparison.abs_lift,
                p_value=comparison.p_value,
                p_value_adjusted=comparison.p_value_adjusted,
                ci=_pair(comparison.ci),
                rel_lift=comparison.rel_lift,
                rel_ci=_pair(comparison.rel_ci),
                rel_p_value=comparison.rel_p_value,
                chance_to_win=comparison.chance_to_win,
                sequential_ci=_pair(comparison.sequential_ci),
                sequential_p_value=comparison.sequential_p_value,
                rel_sequential_ci=_pair(comparison.rel_sequential_ci),
                rel_sequential_p_value=comparison.rel_sequential_p_value,
            )
        rows.append(_row(summary.key, summary.n, **values))
    return rows


def _srm(result: SRMResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "p_value": result.p_value,
        "flagged": result.flagged,
        "chi2": result.chi2,
        "expected": result.expected,
    }


def _sample_size(
    experiment: Experiment,
    goal: MetricSpec | None,
    rows: list[dict[str, Any]],
    counts: ExposureCounts,
    *,
    alpha: float,
    one_sided: bool,
    now_ts: int,
) -> dict[str, Any] | None:
    """The goal's planned sample from the control's baseline; None when it cannot be planned."""
    if goal is None or not rows or rows[0]["mean"] is None or not rows[0]["exposures"]:
        return None
    control = rows[0]
    mde = experiment.experiment_rule.mde
    needed = required_per_variant(
        control["mean"],
        control["stddev"] or 0.0,
        mde,
        conversion=goal.kind == "conversion",
        alpha=alpha,
        one_sided=one_sided,
    )
    if needed is None:
        return None
    if experiment.stopped_at is not None and experiment.status == "stopped":
        now_ts = int(experiment.stopped_at.timestamp() * 1_000_000)
    exposed = [counts.per_variant.get(k, 0) for k in experiment.variant_keys]
    planned = plan(
        needed, exposed, experiment.weights, first_exposure_ts=counts.first_ts, now_ts=now_ts
    )
    return {
        "baseline": control["mean"],
        "mde": mde,
        "power": DEFAULT_POWER,
        "per_variant": planned.per_variant,
        "progress": planned.progress,
        "exposed_per_day": planned.exposed_per_day,
        "days_remaining": planned.days_remaining,
    }


def experiment_results(
    experiment: Experiment,
    *,
    sequential: bool = False,
    alpha: float = 0.05,
    one_sided: bool | None = None,
    now_ts: int | None = None,
) -> dict[str, Any]:
    """Every metric of the experiment, analysed; the primary goal's table at the top level
    (the REST contract), guardrails and other metrics under ``metrics``.

    ``one_sided`` None uses the experiment's setting; ``now_ts`` (microseconds) is when the
    traffic is measured up to (default: now).
    """
    if one_sided is None:
        one_sided = experiment.experiment_rule.one_sided
    if now_ts is None:
        now_ts = time.time_ns() // 1000
    keys = experiment.variant_keys
    weights = experiment.weights
    scope = experiment.scope_id
    with metadata_connection() as connection:
        counts = exposure_counts(
            connection,
            scope_id=scope,
            experiment_key=experiment.key,
            bucket_version=experiment.bucket_version,
            variant_keys=keys,
        )
        per_metric: list[tuple[MetricSpec, dict[str, Any]]] = []
        for metric in experiment.metrics:
            summaries = metric_summaries(
                connection,
                scope_id=scope,
                experiment_key=experiment.key,
                bucket_version=experiment.bucket_version,
                variant_keys=keys,
                metric=metric,
            )
            stats = analyze(
                [VariantSummary(s.variant, s.n, s.mean, s.stddev) for s in summaries],
                weights,
                alpha=alpha,
                sequential=sequential,
                one_sided=one_sided,
            )
            totals = {s.variant: s.total for s in summaries}
            per_metric.append(
                (
                    metric,
                    {
                        "key": metric.key,
                        "kind": metric.kind,
                        "event": metric.event,
                        "guardrail": metric.guardrail,
                        "variants": _variant_rows(stats, totals),
                    },
                )
            )
    exposed = [counts.per_variant.get(k, 0) for k in keys]
    primary = next(((metric, table) for metric, table in per_metric if not metric.guardrail), None)
    if primary is not None:
        variants = primary[1]["variants"]
    else:
        variants = [_row(k, n) for k, n in zip(keys, exposed, strict=True)]
    srm = _srm(srm_check(exposed, weights))
    sample_size = _sample_size(
        experiment,
        primary[0] if primary else None,
        variants,
        counts,
        alpha=alpha,
        one_sided=one_sided,
        now_ts=now_ts,
    )
    verdicts = [
        verdict(
            row,
            goal=primary[1]["key"] if primary else None,
            alpha=alpha,
            one_sided=one_sided,
            sequential=sequential,
            srm_p_value=srm["p_value"] if srm and srm["flagged"] else None,
            progress=sample_size["progress"] if sample_size else None,
            days_remaining=sample_size["days_remaining"] if sample_size else None,
        ).to_json()
        for row in variants[1:]
    ]
    return {
        "key": experiment.key,
        "status": experiment.status,
        "bucket_version": experiment.bucket_version,
        "goal": primary[1]["key"] if primary is not None else None,
        "alpha": alpha,
        "sequential": sequential,
        "one_sided": one_sided,
        "variants": variants,
        "srm": srm,
        "multiple_variants": counts.multiple_variants,
        "metrics": [table for _metric, table in per_metric],
        "sample_size": sample_size,
        "verdicts": verdicts,
    }
