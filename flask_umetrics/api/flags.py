"""Routes for the browser: the current subject's flags, and the consent choice.

Both are public (the visitor is the subject); they only ever read definitions and write the
visitor's own cookie, assignments and exposures, and only with consent.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field, JsonValue, StrictBool, field_validator

from ..db.types import utcnow
from ..flags.request import current_flags
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "flags"
MAX_KEYS = 100
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")


class FlagsQuery(ScopedModel):
    keys: str | None = Field(
        None,
        description="Comma-separated keys; when absent, every live flag (running, or stopped "
        "with a shipped variant). Drafts, paused and stopped flags are not listed.",
    )

    umetrics_force: str | None = Field(
        None,
        max_length=2000,
        description="QA, only with UMETRICS_ALLOW_URL_FORCE: key:variant[,key:variant] served "
        "for this request (never stored, never an exposure); ignored otherwise.",
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: str | None) -> str | None:
        if value is None:
            return None
        keys = [k for k in value.split(",") if k]
        if len(keys) > MAX_KEYS:
            raise ValueError(f"at most {MAX_KEYS} keys")
        for key in keys:
            if not _KEY.match(key):
                raise ValueError(f"{key!r} is not a flag key")
        return ",".join(keys)


class FlagValue(BaseModel):
    variant: str | None
    enabled: bool
    in_experiment: bool
    value: JsonValue = Field(None, description="The variant's value (get_value).")


class FlagsResponse(BaseModel):
    flags: dict[str, FlagValue]
    consent: bool


@router.route(
    "/flags",
    summary="Variants for the current subject (sets the consent cookie only with consent)",
    permission=None,
    tag=TAG,
    query=FlagsQuery,
    response=FlagsResponse,
)
def flags_for_subject(call: APICall) -> FlagsResponse:
    flags = current_flags(call.scope_id)
    if call.query.keys is None:
        now = utcnow()
        definitions = flags.state.flag_cache.definitions(call.scope_id)
        keys = sorted(key for key, flag in definitions.items() if flag.is_live(now))
    else:
        keys = call.query.keys.split(",")
    values = {key: FlagValue(**flags.resolve(key).to_json()) for key in keys}
    return FlagsResponse(flags=values, consent=flags.consent)


class ConsentBody(ScopedModel):
    consent: StrictBool


class ConsentResponse(BaseModel):
    consent: bool
    cookie: bool = Field(description="Whether a consent cookie is set (needs a cookie key).")
    anonymous_id: str | None = Field(
        None,
        description="The consent cookie's anonymous id (with consent): the browser client uses "
        "it as the visitor's distinct id, so events and experiment exposures are one person.",
    )


@router.route(
    "/consent",
    methods=("POST",),
    summary="Give or withdraw consent: sets or clears the consent cookie",
    permission=None,
    tag=TAG,
    body=ConsentBody,
    response=ConsentResponse,
)
def consent(call: APICall) -> ConsentResponse:
    flags = current_flags(call.scope_id)
    flags.set_consent(call.body.consent)
    anonymous_id = flags.cookie.anon_id if flags.consent and flags.cookie is not None else None
    return ConsentResponse(
        consent=flags.consent, cookie=flags.cookie is not None, anonymous_id=anonymous_id
    )
