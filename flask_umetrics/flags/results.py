"""Experiment results: per-variant metrics from SQL, then the statistics
(docs/flags-experiments.md, "Results")."""

from __future__ import annotations

from typing import Any

from ..queries.connection import metadata_connection
from .metrics import exposure_counts, metric_summaries
from .model import Experiment, MetricSpec
from .statistics import ExperimentStatistics, SRMResult, VariantSummary, analyze, srm_check


def _pair(value: tuple[float, float] | None) -> list[float] | None:
    return [value[0], value[1]] if value is not None else None


_COMPARISON_FIELDS = (
    "abs_lift",
    "p_value",
    "p_value_adjusted",
    "ci",
    "rel_lift",
    "rel_ci",
    "chance_to_win",
    "sequential_ci",
    "sequential_p_value",
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
                chance_to_win=comparison.chance_to_win,
                sequential_ci=_pair(comparison.sequential_ci),
                sequential_p_value=comparison.sequential_p_value,
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


def experiment_results(
    experiment: Experiment, *, sequential: bool = False, alpha: float = 0.05
) -> dict[str, Any]:
    """Every metric of the experiment, analysed; the primary goal's table at the top level
    (the REST contract), guardrails and other metrics under ``metrics``."""
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
    primary = next((table for metric, table in per_metric if not metric.guardrail), None)
    if primary is not None:
        variants = primary["variants"]
    else:
        variants = [_row(k, n) for k, n in zip(keys, exposed, strict=True)]
    return {
        "key": experiment.key,
        "status": experiment.status,
        "bucket_version": experiment.bucket_version,
        "goal": primary["key"] if primary is not None else None,
        "alpha": alpha,
        "sequential": sequential,
        "variants": variants,
        "srm": _srm(srm_check(exposed, weights)),
        "multiple_variants": counts.multiple_variants,
        "metrics": [table for _metric, table in per_metric],
    }
