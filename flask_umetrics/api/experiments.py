"""REST routes for flags and experiments: list and results (view); create, update, start,
pause, stop, ship, kill and delete (manage). Every change is audited with before and after."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool

from ..errors import APIError
from ..flags import store
from ..flags.model import MAX_RULES, Experiment, OverrideSpec, RuleSpec
from ..flags.results import experiment_results
from .models import ScopedModel
from .results_schema import ExperimentResults
from .router import APICall
from .routes import router

TAG = "experiments"


class ExperimentList(BaseModel):
    experiments: list[dict[str, Any]]


def _found(call: APICall, key: str) -> Experiment:
    experiment = store.get_experiment(key, scope_id=call.scope_id)
    if experiment is None:
        raise APIError(404, "not_found", f"No flag or experiment {key!r} in this scope.")
    return experiment


class ListQuery(ScopedModel):
    kind: str | None = Field(None, pattern="^(experiment|flag)$")


@router.route(
    "/experiments",
    summary="Flags and experiments of the scope",
    permission="metrics.view",
    tag=TAG,
    query=ListQuery,
    response=ExperimentList,
)
def experiments_list(call: APICall) -> ExperimentList:
    found = store.list_experiments(scope_id=call.scope_id)
    kind = call.query.kind
    return ExperimentList(
        experiments=[e.to_json() for e in found if kind is None or e.kind == kind]
    )


class CreateBody(store.ExperimentSpec):
    scope_id: str | None = None


@router.route(
    "/experiments",
    methods=("POST",),
    summary="Create a flag or experiment (status draft)",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    body=CreateBody,
    status=201,
)
def experiments_create(call: APICall) -> dict[str, Any]:
    spec = store.ExperimentSpec.model_validate(call.body.model_dump(exclude={"scope_id"}))
    return store.create_experiment(spec, scope_id=call.scope_id, actor=call.actor).to_json()


@router.route(
    "/experiments/<key>",
    summary="One flag or experiment",
    permission="metrics.view",
    tag=TAG,
    query=ScopedModel,
)
def experiments_get(call: APICall, key: str) -> dict[str, Any]:
    return _found(call, key).to_json()


class UpdateBody(store.ExperimentChanges):
    scope_id: str | None = None


@router.route(
    "/experiments/<key>",
    methods=("PATCH",),
    summary="Change a definition (weights never move assigned subjects)",
    permission="metrics.manage",
    tag=TAG,
    body=UpdateBody,
)
def experiments_update(call: APICall, key: str) -> dict[str, Any]:
    sent = call.body.model_fields_set - {"scope_id"}
    changes = store.ExperimentChanges.model_validate(call.body.model_dump(include=sent))
    return store.update_experiment(key, changes, scope_id=call.scope_id, actor=call.actor).to_json()


@router.route(
    "/experiments/<key>/start",
    methods=("POST",),
    summary="Start serving variants",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    body=ScopedModel,
)
def experiments_start(call: APICall, key: str) -> dict[str, Any]:
    return store.start_experiment(key, scope_id=call.scope_id, actor=call.actor).to_json()


@router.route(
    "/experiments/<key>/pause",
    methods=("POST",),
    summary="Pause: everyone gets the control variant, assignments are kept",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    body=ScopedModel,
)
def experiments_pause(call: APICall, key: str) -> dict[str, Any]:
    return store.pause_experiment(key, scope_id=call.scope_id, actor=call.actor).to_json()


class StopBody(ScopedModel):
    shipped_variant: str | None = Field(None, max_length=100)


@router.route(
    "/experiments/<key>/stop",
    methods=("POST",),
    summary="Stop, optionally shipping one variant to everyone",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    body=StopBody,
)
def experiments_stop(call: APICall, key: str) -> dict[str, Any]:
    return store.stop_experiment(
        key, shipped_variant=call.body.shipped_variant, scope_id=call.scope_id, actor=call.actor
    ).to_json()


class ShipBody(ScopedModel):
    variant: str = Field(min_length=1, max_length=100)


@router.route(
    "/experiments/<key>/ship",
    methods=("POST",),
    summary="Stop and serve one variant to everyone",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    body=ShipBody,
)
def experiments_ship(call: APICall, key: str) -> dict[str, Any]:
    return store.stop_experiment(
        key, shipped_variant=call.body.variant, scope_id=call.scope_id, actor=call.actor
    ).to_json()


class KillBody(ScopedModel):
    killed: bool = True


@router.route(
    "/experiments/<key>/kill",
    methods=("POST",),
    summary="Kill switch: control for everyone, nothing logged (killed=false to revive)",
    permission="metrics.manage",
    tag=TAG,
    body=KillBody,
)
def experiments_kill(call: APICall, key: str) -> dict[str, Any]:
    return store.set_killed(
        key, call.body.killed, scope_id=call.scope_id, actor=call.actor
    ).to_json()


class RulesBody(ScopedModel):
    rules: list[RuleSpec] = Field(max_length=MAX_RULES)


@router.route(
    "/experiments/<key>/rules",
    methods=("PUT",),
    summary="Replace a feature's ordered rules (force, rollout, experiment)",
    permission="metrics.manage",
    tag=TAG,
    body=RulesBody,
)
def experiments_rules(call: APICall, key: str) -> dict[str, Any]:
    changes = store.ExperimentChanges.model_validate({"rules": call.body.rules})
    return store.update_experiment(key, changes, scope_id=call.scope_id, actor=call.actor).to_json()


class OverridesBody(ScopedModel):
    overrides: list[OverrideSpec] = Field(max_length=MAX_RULES)


@router.route(
    "/experiments/<key>/overrides",
    methods=("PUT",),
    summary="Replace a feature's overrides (subject ids or a segment that always get a variant)",
    permission="metrics.manage",
    tag=TAG,
    body=OverridesBody,
)
def experiments_overrides(call: APICall, key: str) -> dict[str, Any]:
    changes = store.ExperimentChanges.model_validate({"overrides": call.body.overrides})
    return store.update_experiment(key, changes, scope_id=call.scope_id, actor=call.actor).to_json()


class ToggleBody(ScopedModel):
    on: StrictBool


@router.route(
    "/experiments/<key>/toggle",
    methods=("POST",),
    summary="Turn a feature on or off (off is the kill switch: control for everyone)",
    permission="metrics.manage",
    tag=TAG,
    body=ToggleBody,
)
def experiments_toggle(call: APICall, key: str) -> dict[str, Any]:
    return store.set_killed(
        key, not call.body.on, scope_id=call.scope_id, actor=call.actor
    ).to_json()


class Deleted(BaseModel):
    key: str
    deleted: bool


@router.route(
    "/experiments/<key>",
    methods=("DELETE",),
    summary="Delete a stopped or draft flag with its assignments and exposures",
    permission="metrics.manage",
    tag=TAG,
    errors=(409,),
    query=ScopedModel,
    response=Deleted,
)
def experiments_delete(call: APICall, key: str) -> Deleted:
    store.delete_experiment(key, scope_id=call.scope_id, actor=call.actor)
    return Deleted(key=key, deleted=True)


class ResultsQuery(ScopedModel):
    sequential: bool = Field(False, description="Always-valid intervals: safe to peek.")
    alpha: float = Field(0.05, gt=0, lt=0.5)
    one_sided: bool | None = Field(
        None, description="One-sided tests; default: the experiment rule's one_sided setting."
    )


@router.route(
    "/experiments/<key>/results",
    summary="Exposures, metric means, lifts, p-values, intervals, chance to win, SRM, "
    "sample size and verdicts",
    permission="metrics.view",
    tag=TAG,
    query=ResultsQuery,
    response=ExperimentResults,
)
def experiments_results(call: APICall, key: str) -> dict[str, Any]:
    experiment = _found(call, key)
    return experiment_results(
        experiment,
        sequential=call.query.sequential,
        alpha=call.query.alpha,
        one_sided=call.query.one_sided,
    )
