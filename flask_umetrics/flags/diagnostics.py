"""Why a flag or experiment has no exposures: the configuration gaps a user can act on.

Exposures are only logged for the experiment rule, while running, with consent. A page that shows
"0 exposed" says which of these stands in the way instead of leaving the user to guess.
"""

from __future__ import annotations

from datetime import datetime

from ..state import UMetricsState
from .model import Experiment


def no_exposure_reasons(experiment: Experiment, state: UMetricsState, now: datetime) -> list[str]:
    """Plain-language reasons why ``experiment`` logs no exposures now (empty: none found)."""
    reasons: list[str] = []
    status = experiment.effective_status(now)
    if experiment.killed:
        reasons.append("It is switched off (kill switch): everyone gets the control variant.")
    elif status != "running":
        reasons.append(f"It is not running (status {status}): start it to serve variants.")
    if not experiment.has_experiment:
        reasons.append(
            "It has no experiment rule: force and rollout rules and overrides serve values "
            "without logging exposures."
        )
    settings = state.settings
    if settings["UMETRICS_CONSENT_REQUIRED"] and state.extension.consent_loader_callback is None:
        reasons.append(
            "No consent: with UMETRICS_CONSENT_REQUIRED on, exposures are only logged for "
            "visitors who consented (the consent banner / POST /api/consent), and no "
            "@umetrics.consent_loader tells us that a logged-in user agreed."
        )
    if not state.cookie_keyring.can_write:
        reasons.append(
            "No consent-cookie key (UMETRICS_COOKIE_KEY_CURRENT): anonymous visitors get the "
            "control variant and are never exposed. Create one with "
            "`flask umetrics gen-cookie-key`."
        )
    if state.extension.subject_loader_callback is None:
        reasons.append(
            "No @umetrics.subject_loader: logged-in users are not known, only anonymous "
            "visitors with a consent cookie can be exposed."
        )
    return reasons
