"""``flask umetrics gen-cookie-key`` and ``flask umetrics experiments ...``."""

from __future__ import annotations

import json

import click
import pydantic

from .cli import umetrics_cli
from .errors import APIError, UMetricsError
from .flags import store
from .flags.cookie import generate_cookie_key
from .flags.results import experiment_results
from .flags.verdict import plan_text


@umetrics_cli.command("gen-cookie-key")
@click.option("--key-id", default="v1", show_default=True, help="Id to give the key.")
def gen_cookie_key(key_id: str) -> None:
    """Print a new AES-256 key for the consent cookie, as environment variables."""
    click.echo(f"UMETRICS_COOKIE_KEY_CURRENT={key_id}")
    click.echo(f"UMETRICS_COOKIE_KEY_{key_id}={generate_cookie_key()}")
    click.echo(
        "# Keep earlier UMETRICS_COOKIE_KEY_<id> variables set after rotating: "
        "cookies written under them still decrypt.",
        err=True,
    )


@umetrics_cli.group("experiments")
def experiments_group() -> None:
    """Flags and experiments: list, show, start, pause, stop, ship, kill, results."""


def _run(action: object) -> None:
    try:
        result = action() if callable(action) else action
    except APIError as exc:
        raise click.ClickException(exc.message) from exc
    except UMetricsError as exc:
        raise click.ClickException(str(exc)) from exc
    except pydantic.ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise click.ClickException(f"invalid: {problems}") from exc
    if result is not None:
        click.echo(json.dumps(result, indent=2, default=str))


@experiments_group.command("list")
@click.option("--scope", default=None)
def experiments_list(scope: str | None) -> None:
    """One line per flag or experiment: key, kind, status, variants."""
    for e in store.list_experiments(scope_id=scope):
        variants = ", ".join(f"{v.key}:{v.weight:g}" for v in e.variants)
        shipped = f" shipped={e.shipped_variant}" if e.shipped_variant else ""
        killed = " KILLED" if e.killed else ""
        click.echo(f"{e.key}\t{e.kind}\t{e.status}{shipped}{killed}\t{variants}")


@experiments_group.command("create")
@click.argument("definition", type=click.File("r"))
@click.option("--scope", default=None)
def experiments_create(definition: click.File, scope: str | None) -> None:
    """Create from a JSON file (``-`` for stdin) with the body of POST /api/experiments."""
    try:
        body = json.load(definition)  # type: ignore[arg-type]
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"not valid JSON: {exc}") from exc
    _run(lambda: store.create_experiment(body, scope_id=scope, actor="cli").to_json())


@experiments_group.command("update")
@click.argument("key")
@click.argument("changes", type=click.File("r"))
@click.option("--scope", default=None)
def experiments_update(key: str, changes: click.File, scope: str | None) -> None:
    """Change a definition from a JSON file (``-`` for stdin) with the body of PATCH
    /api/experiments/<key>: e.g. ``{"rules": [...]}`` or ``{"overrides": [...]}``."""
    try:
        body = json.load(changes)  # type: ignore[arg-type]
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"not valid JSON: {exc}") from exc
    _run(lambda: store.update_experiment(key, body, scope_id=scope, actor="cli").to_json())


@experiments_group.command("toggle")
@click.argument("key")
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--scope", default=None)
def experiments_toggle(key: str, state: str, scope: str | None) -> None:
    """Turn a feature on or off (off is the kill switch)."""
    _run(lambda: not store.set_killed(key, state == "off", scope_id=scope, actor="cli").killed)


@experiments_group.command("show")
@click.argument("key")
@click.option("--scope", default=None)
def experiments_show(key: str, scope: str | None) -> None:
    """The whole definition as JSON."""
    experiment = store.get_experiment(key, scope_id=scope)
    if experiment is None:
        raise click.ClickException(f"no flag or experiment {key!r}")
    _run(experiment.to_json())


@experiments_group.command("start")
@click.argument("key")
@click.option("--scope", default=None)
def experiments_start(key: str, scope: str | None) -> None:
    """Start serving variants."""
    _run(lambda: store.start_experiment(key, scope_id=scope, actor="cli").status)


@experiments_group.command("pause")
@click.argument("key")
@click.option("--scope", default=None)
def experiments_pause(key: str, scope: str | None) -> None:
    """Everyone gets the control variant until started again."""
    _run(lambda: store.pause_experiment(key, scope_id=scope, actor="cli").status)


@experiments_group.command("stop")
@click.argument("key")
@click.option("--ship", "shipped", default=None, help="Variant everyone gets from now on.")
@click.option("--scope", default=None)
def experiments_stop(key: str, shipped: str | None, scope: str | None) -> None:
    """Stop the experiment (optionally shipping a variant)."""
    _run(
        lambda: (
            store.stop_experiment(key, shipped_variant=shipped, scope_id=scope, actor="cli").status
        )
    )


@experiments_group.command("kill")
@click.argument("key")
@click.option("--revive", is_flag=True, help="Turn the kill switch off again.")
@click.option("--scope", default=None)
def experiments_kill(key: str, revive: bool, scope: str | None) -> None:
    """Kill switch: control for everyone, nothing logged."""
    _run(lambda: store.set_killed(key, not revive, scope_id=scope, actor="cli").killed)


@experiments_group.command("results")
@click.argument("key")
@click.option("--scope", default=None)
@click.option("--sequential", is_flag=True, help="Always-valid intervals (safe to peek).")
@click.option(
    "--one-sided/--two-sided",
    "one_sided",
    default=None,
    help="The test's alternative (default: the experiment rule's one_sided setting).",
)
def experiments_results(
    key: str, scope: str | None, sequential: bool, one_sided: bool | None
) -> None:
    """A table of the primary metric per variant (relative lift and its p-value), the verdicts,
    the planned sample, then SRM."""
    experiment = store.get_experiment(key, scope_id=scope)
    if experiment is None:
        raise click.ClickException(f"no flag or experiment {key!r}")
    result = experiment_results(experiment, sequential=sequential, one_sided=one_sided)
    click.echo(f"{key}: goal {result['goal'] or '(none)'}, status {result['status']}")
    click.echo(f"{'variant':<16}{'exposed':>9}{'mean':>10}{'lift':>10}{'p':>10}{'win':>8}")
    for row in result["variants"]:

        def fmt(value: object, spec: str) -> str:
            return format(value, spec) if isinstance(value, (int, float)) else "-"

        click.echo(
            f"{row['key']:<16}{row['exposures']:>9}{fmt(row['mean'], '>10.4f')}"
            f"{fmt(row['rel_lift'], '>+10.2%')}{fmt(row['rel_p_value'], '>10.4f')}"
            f"{fmt(row['chance_to_win'], '>8.1%')}"
        )
    for verdict in result["verdicts"]:
        click.echo(verdict["text"])
    plan = plan_text(result["sample_size"], goal=result["goal"], alpha=result["alpha"])
    if plan:
        click.echo(plan)
    srm = result["srm"]
    if srm is not None:
        flag = "  SAMPLE RATIO MISMATCH" if srm["flagged"] else ""
        click.echo(f"SRM p-value {srm['p_value']:.4g}{flag}")
