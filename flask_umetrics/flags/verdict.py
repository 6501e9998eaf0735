"""The results page's one-sentence verdict per treatment, written from the numbers alone.

One function, so the dashboard, the REST answer and the tests all read the same words:
``annual-first raises plan_upgraded by 33% (95% CI 2% to 57%); 96.9% chance to beat control;
keep running: 40% of the planned sample``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["win", "loss", "inconclusive", "not_enough_data", "srm"]


@dataclass(frozen=True)
class Verdict:
    """What a treatment's numbers say: ``kind`` for styling, ``text`` for people."""

    variant: str
    kind: Kind
    text: str

    def to_json(self) -> dict[str, str]:
        return {"variant": self.variant, "kind": self.kind, "text": self.text}


def percent(value: float) -> str:
    """``0.331`` -> ``33%``, ``0.031`` -> ``3.1%``, ``0.02`` -> ``2%``: two significant digits
    where it matters, no trailing zero."""
    scaled = value * 100
    if abs(scaled) >= 9.95:
        return f"{scaled:.0f}%"
    text = f"{scaled:.1f}".rstrip("0").rstrip(".")
    return f"{'0' if text in ('', '-0') else text}%"


def verdict(
    row: dict[str, Any],
    *,
    goal: str | None,
    alpha: float,
    one_sided: bool = False,
    sequential: bool = False,
    srm_p_value: float | None = None,
    progress: float | None = None,
    days_remaining: float | None = None,
) -> Verdict:
    """The verdict on one treatment row of the results (``rel_lift``, ``rel_ci``,
    ``rel_p_value``, ``chance_to_win``; the ``rel_sequential_*`` fields when ``sequential``).

    ``srm_p_value`` is given only when the sample ratio check flagged the experiment: nothing
    else is worth reading then. ``progress`` is the share of the planned sample reached; a
    fixed-horizon result is final only there (a sequential one is valid at any time).
    """
    variant = str(row["key"])
    if srm_p_value is not None:
        return Verdict(
            variant,
            "srm",
            f"Sample ratio mismatch (p = {srm_p_value:.2g}): exposures do not follow the "
            "configured weights, so no result can be trusted; check how subjects are assigned "
            "and exposures recorded",
        )
    if goal is None:
        return Verdict(variant, "not_enough_data", "No goal metric: add one to get a verdict")
    ci_field, p_field = ("rel_sequential_ci", "rel_sequential_p_value")
    if not sequential:
        ci_field, p_field = ("rel_ci", "rel_p_value")
    lift, ci, p_value = row.get("rel_lift"), row.get(ci_field), row.get(p_field)
    if lift is None or ci is None or p_value is None:
        exposed = int(row.get("exposures") or 0)
        return Verdict(
            variant,
            "not_enough_data",
            f"Not enough data yet: {variant} has {exposed} exposed "
            f"subject{'s' if exposed != 1 else ''} with a measurable {goal}",
        )
    significant = p_value < alpha
    if significant and lift > 0:
        kind: Kind = "win"
        head = f"{variant} raises {goal} by {percent(lift)}"
    elif significant and lift < 0:
        kind = "loss"
        head = f"{variant} lowers {goal} by {percent(-lift)}"
    else:
        kind = "inconclusive"
        head = f"No clear difference: {variant} changes {goal} by {_signed(lift)}"
    level = percent(1 - alpha)
    low, high = ci
    if one_sided and not sequential:
        interval = f"{level} one-sided CI {percent(low)} or more"
    else:
        interval = f"{level} CI {percent(low)} to {percent(high)}"
    parts = [f"{head} ({interval})"]
    chance = row.get("chance_to_win")
    if chance is not None:
        parts.append(f"{percent_chance(chance)} chance to beat control")
    parts.append(_advice(kind, variant, sequential, progress, days_remaining))
    return Verdict(variant, kind, "; ".join(parts))


def percent_chance(value: float) -> str:
    """Chances with one decimal (``96.9%``), never rounded to a certain 0% or 100%."""
    scaled = min(max(value * 100, 0.1), 99.9)
    return f"{scaled:.1f}%"


def _share(progress: float) -> str:
    return percent(progress) if progress >= 0.01 or progress == 0 else "under 1%"


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + percent(value)


def _advice(
    kind: Kind,
    variant: str,
    sequential: bool,
    progress: float | None,
    days_remaining: float | None,
) -> str:
    reached = progress is not None and progress >= 1
    if kind == "loss" and progress is not None and not reached and not sequential:
        # A loss is worth acting on early: keeping subjects on a worse variant has a cost.
        return f"consider stopping {variant}: only {_share(progress)} of the planned sample so far"
    if progress is not None and not reached and not (sequential and kind != "inconclusive"):
        remaining = duration(days_remaining)
        return (
            f"keep running: {_share(progress)} of the planned sample"
            f"{', ' + remaining if remaining else ''}"
        )
    if kind == "win":
        return f"significant: consider shipping {variant}"
    if kind == "loss":
        return f"significant: consider stopping {variant}"
    if reached:
        return "planned sample reached: any effect is likely smaller than the one planned for"
    return "keep running"


def duration(days_remaining: float | None) -> str:
    """``about 6 more days at current traffic``; empty when there is no traffic to go by."""
    if days_remaining is None or not math.isfinite(days_remaining):
        return ""
    if days_remaining > 365:
        return "more than a year at current traffic"
    days = max(1, math.ceil(days_remaining))
    return f"about {days:,} more day{'s' if days != 1 else ''} at current traffic"


def plan_text(sample_size: dict[str, Any] | None, *, goal: str | None, alpha: float) -> str:
    """The results' ``sample_size`` as a sentence: "needs N per variant, about D more days"."""
    if sample_size is None:
        if goal is None:
            return ""
        return f"No planned sample yet: the control has no baseline for {goal}"
    text = (
        f"Planned sample: {sample_size['per_variant']:,} subjects per variant to detect a "
        f"{percent(sample_size['mde'])} change in {goal} (baseline "
        f"{sample_size['baseline']:.4g}, {percent(sample_size['power'])} power, "
        f"\u03b1 = {alpha:g}); {_share(sample_size['progress'])} reached"
    )
    per_day = sample_size["exposed_per_day"]
    if per_day is not None:
        text += f"; {per_day:,.1f} subjects exposed per day"
        remaining = duration(sample_size["days_remaining"])
        if remaining and sample_size["progress"] < 1:
            text += f", {remaining}"
    return text + "."
