"""flask-umetrics wiring: who may read the metrics, who the subject is, and the stat collectors.

The extension is module-level and keeps no app, so the collectors below are registered once at
import time and serve every app ``create_app`` builds (tests build many).
"""

from __future__ import annotations

from typing import Any

from flask_umetrics import UMetrics

from . import metrics
from .auth import current_user

#: The one analytics scope of this single-tenant demo (also ``UMETRICS_DEFAULT_SCOPE``).
SCOPE = "acme"

#: What Acme staff may do on the scope through their login (API keys grant on their own).
ADMIN_PERMISSIONS = frozenset({"metrics.view", "metrics.manage"})

umetrics = UMetrics()


@umetrics.authorizer
def can(permission: str, scope_id: str) -> bool:
    """Only admins, only on the ``acme`` scope, only the metrics permissions."""
    user = current_user()
    return (
        user is not None and user.is_admin and scope_id == SCOPE and permission in ADMIN_PERMISSIONS
    )


@umetrics.subject_loader
def subject() -> tuple[str | None, dict[str, Any]]:
    """The logged-in user with the attributes the metrics are broken down by."""
    user = current_user()
    if user is None:
        return None, {}
    return str(user.id), {"plan": user.plan, "email_domain": user.email_domain}


@umetrics.stat_collector("users_total", label="Users", format="integer")
def collect_users_total(scope_id: str) -> float:
    return metrics.users_total()


@umetrics.stat_collector("signups_7d", label="Sign-ups (7 days)", format="integer")
def collect_signups_7d(scope_id: str) -> float:
    return metrics.signups_7d()


@umetrics.stat_collector("active_users_7d", label="Active users (7 days)", format="integer")
def collect_active_users_7d(scope_id: str) -> float:
    return metrics.active_users_7d()


@umetrics.stat_collector("mrr", label="MRR", format="currency:USD")
def collect_mrr(scope_id: str) -> float:
    return metrics.mrr()


@umetrics.stat_collector("paying_customers", label="Paying customers", format="integer")
def collect_paying_customers(scope_id: str) -> float:
    return metrics.paying_customers()


@umetrics.stat_collector("notes_total", label="Notes", format="integer")
def collect_notes_total(scope_id: str) -> float:
    return metrics.notes_total()
