"""REST routes for API keys of a scope: list, create (shown once), revoke."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..auth import issue_api_key, list_api_keys, revoke_api_key
from ..errors import APIError
from .router import APICall
from .routes import router

TAG = "keys"


class KeyInfo(BaseModel):
    key_id: str
    scope_id: str
    permission: str
    name: str
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class KeysQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope_id: str | None = None
    include_revoked: bool = False


class KeysResponse(BaseModel):
    keys: list[KeyInfo]


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
    return KeysResponse(keys=[KeyInfo(**key.to_dict()) for key in keys])  # type: ignore[arg-type]


class CreateKeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope_id: str | None = None
    permission: Literal["ingest", "metrics.view", "metrics.manage"]
    name: str = Field("", max_length=200)


class CreatedKey(BaseModel):
    key: str = Field(description="The secret key. It is shown this once and never again.")
    info: KeyInfo


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
    actor = call.principal.actor if call.principal else None
    raw, info = issue_api_key(
        call.scope_id, call.body.permission, name=call.body.name, created_by=actor
    )
    return CreatedKey(key=raw, info=KeyInfo(**info.to_dict()))  # type: ignore[arg-type]


class RevokedKey(BaseModel):
    key_id: str
    revoked: bool


class RevokeQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scope_id: str | None = None


@router.route(
    "/keys/<key_id>",
    methods=("DELETE",),
    summary="Revoke an API key",
    permission="metrics.manage",
    tag=TAG,
    query=RevokeQuery,
    response=RevokedKey,
)
def keys_revoke(call: APICall, key_id: str) -> RevokedKey:
    actor = call.principal.actor if call.principal else None
    if not revoke_api_key(key_id, scope_id=call.scope_id, actor=actor):
        raise APIError(404, "not_found", f"No active API key {key_id!r} in this scope.")
    return RevokedKey(key_id=key_id, revoked=True)
