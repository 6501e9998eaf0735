"""REST routes for GA4: status and reports (view); connect, OAuth, accounts, link, provision,
sync and disconnect (manage). Credentials and secrets never appear in an answer."""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from ..ga4 import service
from .models import ScopedModel
from .router import APICall
from .routes import router

TAG = "ga4"
#: What a GA4 route may answer besides bad input: not connected or linked (409), Google's quota
#: (429), the optional libraries missing (501), Google failing or unreachable (502, 503).
GOOGLE_ERRORS = (409, 429, 501, 502, 503)


@router.route(
    "/ga4/status",
    summary="Whether GA4 is available, configured and connected; the linked property",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
)
def ga4_status(call: APICall) -> dict[str, Any]:
    return service.status(call.scope_id)


class ConnectBody(ScopedModel):
    service_account: dict[str, Any] | str = Field(
        description="The service account's JSON key (object or text)."
    )


@router.route(
    "/ga4/connect",
    methods=("POST",),
    summary="Connect GA4 with a service-account key (stored encrypted)",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    body=ConnectBody,
    status=201,
)
def ga4_connect(call: APICall) -> dict[str, Any]:
    service.require_libraries()
    from ..ga4.connections import save_service_account

    connection = save_service_account(call.scope_id, call.body.service_account, actor=call.actor)
    return {"connection": service.connection_json(connection)}


class OAuthStartBody(ScopedModel):
    redirect_uri: str | None = Field(
        None,
        max_length=2000,
        description="Defaults to the app's one callback (UMETRICS_GA4_OAUTH_REDIRECT_URI, else "
        "the dashboard's /admin/ga4/oauth/callback, else this API's /ga4/oauth/callback).",
    )
    provisioning: bool = Field(False, description="Also ask for analytics.edit.")


class OAuthStart(BaseModel):
    authorization_url: str


@router.route(
    "/ga4/oauth/start",
    methods=("POST",),
    summary="Start Google's OAuth consent: answer the URL to send the browser to",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    body=OAuthStartBody,
    response=OAuthStart,
)
def ga4_oauth_start(call: APICall) -> OAuthStart:
    service.require_libraries()
    from ..ga4.oauth import oauth_callback_url, start_oauth

    redirect_uri = call.body.redirect_uri or oauth_callback_url()
    url = start_oauth(
        call.scope_id,
        redirect_uri=redirect_uri,
        actor=call.actor,
        provisioning=call.body.provisioning,
    )
    return OAuthStart(authorization_url=url)


def _scope_from_state() -> str | None:
    if not service.ga4_available():
        return None
    from ..ga4.oauth import state_scope

    return state_scope(request.args.get("state"))


class OAuthCallbackQuery(ScopedModel):
    # Google adds its own parameters (scope, authuser, prompt, iss, ...): ignore them.
    model_config = ConfigDict(extra="ignore")
    state: str = Field(min_length=1, max_length=512)
    code: str | None = Field(None, max_length=2048)
    error: str | None = Field(None, max_length=200)


@router.route(
    "/ga4/oauth/callback",
    summary="Google redirects here; exchanges the code and stores the refresh token",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    query=OAuthCallbackQuery,
    scope_resolver=_scope_from_state,
)
def ga4_oauth_callback(call: APICall) -> dict[str, Any]:
    from ..errors import APIError
    from ..ga4.oauth import finish_oauth

    if call.query.error:
        raise APIError(400, "oauth_denied", f"Google answered: {call.query.error}")
    # finish_oauth refuses a missing code (and checks the state again, with its flow row).
    code = call.query.code or ""
    connection = finish_oauth(call.scope_id, state=call.query.state, code=code)
    return {"connection": service.connection_json(connection)}


@router.route(
    "/ga4/accounts",
    summary="GA4 accounts and properties the scope's credentials can see",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    query=ScopedModel,
)
def ga4_accounts(call: APICall) -> dict[str, Any]:
    return {"accounts": service.accounts(call.scope_id)}


class LinkBody(ScopedModel):
    property_id: str = Field(min_length=1, max_length=40)


@router.route(
    "/ga4/link",
    methods=("POST",),
    summary="Link an existing GA4 property",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    body=LinkBody,
)
def ga4_link(call: APICall) -> dict[str, Any]:
    return service.link(call.scope_id, call.body.property_id, actor=call.actor)


class ProvisionBody(ScopedModel):
    account_id: str = Field(min_length=1, max_length=40)
    display_name: str = Field(min_length=1, max_length=100)
    site_url: str = Field(min_length=1, max_length=2000)
    time_zone: str = Field("UTC", min_length=1, max_length=64)
    currency: str = Field("USD", min_length=3, max_length=3)
    property_id: str | None = Field(
        None,
        min_length=1,
        max_length=40,
        description="A known property of the account to use (else matched by display name).",
    )


@router.route(
    "/ga4/provision",
    methods=("POST",),
    summary="Create or reuse a property, web stream and MP secret, and link them",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    body=ProvisionBody,
)
def ga4_provision(call: APICall) -> dict[str, Any]:
    body = call.body
    return service.provision(
        call.scope_id,
        account_id=body.account_id,
        display_name=body.display_name,
        site_url=body.site_url,
        time_zone=body.time_zone,
        currency=body.currency,
        property_id=body.property_id,
        actor=call.actor,
    )


class ReportQuery(ScopedModel):
    date_from: str | None = None
    date_to: str | None = None
    limit: int | None = None
    steps: list[str] = Field(default_factory=list, description="Funnel: event names, repeated.")
    open: bool | None = None


@router.route(
    "/ga4/reports/<name>",
    summary="A GA4 report: traffic, seo, conversions, realtime or funnel (cached)",
    permission="metrics.view",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    query=ReportQuery,
)
def ga4_report(call: APICall, name: str) -> dict[str, Any]:
    params = call.query.model_dump(exclude_none=True, exclude={"scope_id"})
    if not params.get("steps"):
        params.pop("steps", None)
    return service.report(name, call.scope_id, params)


@router.route(
    "/ga4/sync",
    methods=("POST",),
    summary="Pull GA4 daily figures into the stat store now",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    body=ScopedModel,
)
def ga4_sync(call: APICall) -> dict[str, Any]:
    service.require_libraries()
    from ..ga4.sync import sync_scope

    return sync_scope(call.scope_id).to_dict()


class Disconnected(BaseModel):
    disconnected: bool


@router.route(
    "/ga4",
    methods=("DELETE",),
    summary="Disconnect: revoke the grant, delete credentials and cached reports",
    permission="metrics.manage",
    tag=TAG,
    errors=GOOGLE_ERRORS,
    query=ScopedModel,
    response=Disconnected,
)
def ga4_disconnect(call: APICall) -> Disconnected:
    service.require_libraries()
    from ..ga4.connections import disconnect

    return Disconnected(disconnected=disconnect(call.scope_id, actor=call.actor))
