"""REST routes for API keys of a scope: list, create (shown once), revoke."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..auth import ApiKeyInfo, Permission, issue_api_key, list_api_keys, revoke_api_key
from ..errors import APIError
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "keys"


class KeysQuery(ScopedModel):
    include_revoked: bool = False


class KeysResponse(BaseModel):
    keys: list[ApiKeyInfo]


@router.route(
    "/keys",
    summary="API keys of the scope",
    permission="metrics.manage",
    tag=TAG,
    query=KeysQuery,
    response=KeysResponse,
)
def keys_list(call: APICall) -> KeysResponse:
    keys = list_api_keys(call.scope_id, include_revoked=call.query.include_revoked)
    return KeysResponse(keys=[key for key in keys])


class CreateKeyBody(ScopedModel):
    permission: Permission = Field(
        description="ingest (write key: events, links of fresh anonymous ids), identify (also "
        "merges and properties of identified persons), metrics.view, metrics.manage (all), or "
        "client (reads only the GrowthBook SDK payload)."
    )
    name: str = Field("", max_length=200)


class CreatedKey(BaseModel):
    key: str = Field(description="The secret key. It is shown this once and never again.")
    info: ApiKeyInfo


@router.route(
    "/keys",
    methods=("POST",),
    summary="Create an API key",
    permission="metrics.manage",
    tag=TAG,
    body=CreateKeyBody,
    response=CreatedKey,
    status=201,
)
def keys_create(call: APICall) -> CreatedKey:
    actor = call.actor
    raw, info = issue_api_key(
        call.scope_id, call.body.permission, name=call.body.name, created_by=actor
    )
    return CreatedKey(key=raw, info=info)


class RevokedKey(BaseModel):
    key_id: str
    revoked: bool


@router.route(
    "/keys/<key_id>",
    methods=("DELETE",),
    summary="Revoke an API key",
    permission="metrics.manage",
    tag=TAG,
    query=ScopedModel,
    response=RevokedKey,
)
def keys_revoke(call: APICall, key_id: str) -> RevokedKey:
    actor = call.actor
    if not revoke_api_key(key_id, scope_id=call.scope_id, actor=actor):
        raise APIError(404, "not_found", f"No active API key {key_id!r} in this scope.")
    return RevokedKey(key_id=key_id, revoked=True)
