"""The shape of ``GET /experiments/<key>/results``, for the OpenAPI document
(docs/flags-experiments.md, "Results"). The view answers the dict ``experiment_results`` builds;
these models only describe it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

#: A confidence interval ``[low, high]``; a one-sided interval's open upper end is null.
Interval = list[float | None]


class ResultRow(BaseModel):
    """One variant; the comparison fields are null for control and when they cannot be
    computed (fewer than two subjects, no variance, a zero control mean)."""

    key: str
    exposures: int
    total: float | None
    mean: float | None
    stddev: float | None
    abs_lift: float | None
    p_value: float | None = Field(description="Welch's t-test of the absolute lift.")
    p_value_adjusted: float | None = Field(description="Holm-Bonferroni across treatments.")
    ci: Interval | None
    rel_lift: float | None
    rel_ci: Interval | None = Field(
        description="The relative lift's t interval (delta-method SE, Welch df)."
    )
    rel_p_value: float | None = Field(
        description="The relative lift's p-value from the same t statistic as rel_ci: "
        "below alpha exactly when rel_ci excludes 0."
    )
    chance_to_win: float | None
    sequential_ci: Interval | None
    sequential_p_value: float | None
    rel_sequential_ci: Interval | None
    rel_sequential_p_value: float | None


class MetricTable(BaseModel):
    key: str
    kind: str
    event: str
    guardrail: bool
    variants: list[ResultRow]


class SRMAnswer(BaseModel):
    p_value: float
    flagged: bool
    chi2: float
    expected: list[float]


class SampleSizeAnswer(BaseModel):
    """The goal's planned sample: detect a relative change ``mde`` with 80% power."""

    baseline: float = Field(description="The control's mean (conversion rate) of the goal.")
    mde: float = Field(description="Minimum detectable effect, relative (experiment rule).")
    power: float
    per_variant: int = Field(description="Subjects each variant needs.")
    progress: float = Field(description="The least-filled variant's share of per_variant.")
    exposed_per_day: float | None = Field(description="Subjects exposed per day so far.")
    days_remaining: float | None = Field(description="Days to the plan at that traffic.")


class VerdictAnswer(BaseModel):
    variant: str
    kind: Literal["win", "loss", "inconclusive", "not_enough_data", "srm"]
    text: str


class ExperimentResults(BaseModel):
    key: str
    status: str
    bucket_version: int
    goal: str | None
    alpha: float
    sequential: bool
    one_sided: bool = Field(
        description="One-sided tests (treatment greater than control): the intervals' upper "
        "ends are null. The experiment rule's setting unless the query overrides it."
    )
    variants: list[ResultRow] = Field(description="The goal's table (control first).")
    srm: SRMAnswer | None
    multiple_variants: int
    metrics: list[MetricTable]
    sample_size: SampleSizeAnswer | None
    verdicts: list[VerdictAnswer] = Field(description="One plain-language verdict per treatment.")
