"""The GrowthBook SDK payload: a scope's features for GrowthBook's official SDKs.

An SDK configured with ``api_host = "<app>/<prefix>/api/growthbook"`` and a client key (an API key
with permission ``client``, which can read nothing else) fetches
``{api_host}/api/features/<client key>`` and evaluates our features itself, serving what the
server serves without consent (see docs/flags-experiments.md for what is left out). The key
decides the scope. Nothing is stored and nothing is logged as an exposure.
"""

from __future__ import annotations

from typing import Any

from flask import request

from ..auth import KEY_PREFIX, verify_api_key
from ..db.types import utcnow
from ..flags.growthbook_payload import growthbook_features
from ..state import current_state
from .router import APICall
from .routes import router

TAG = "flags"


def _client_key_scope() -> str | None:
    """The scope of the client key in the path (None: not a valid key; the gate refuses it)."""
    key = (request.view_args or {}).get("client_key")
    if not isinstance(key, str) or not key.startswith(f"{KEY_PREFIX}_"):
        return None
    info = verify_api_key(key)
    return info.scope_id if info is not None else None


def _payload(scope_id: str) -> dict[str, Any]:
    definitions = current_state().flag_cache.definitions(scope_id)
    features = growthbook_features(definitions, utcnow())
    return {"features": features.features, "experiments": [], "savedGroups": {}}


@router.route(
    "/growthbook/api/features/<client_key>",
    summary="GrowthBook SDK payload of the client key's scope (the path GrowthBook SDKs fetch)",
    permission="client",
    tag=TAG,
    scope_resolver=_client_key_scope,
)
def growthbook_sdk_features(call: APICall, client_key: str) -> dict[str, Any]:
    return _payload(call.scope_id)


@router.route(
    "/growthbook/features/<client_key>",
    summary="GrowthBook SDK payload of the client key's scope",
    permission="client",
    tag=TAG,
    scope_resolver=_client_key_scope,
)
def growthbook_features_payload(call: APICall, client_key: str) -> dict[str, Any]:
    return _payload(call.scope_id)
