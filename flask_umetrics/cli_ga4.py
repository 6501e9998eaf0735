"""``flask umetrics ga4 status|sync|forward|gen-encryption-key|reencrypt-secrets``."""

from __future__ import annotations

import json

import click

from .cli import umetrics_cli
from .errors import APIError, UMetricsError


def _fail(exc: Exception) -> click.ClickException:
    message = exc.message if isinstance(exc, APIError) else str(exc)
    return click.ClickException(message)


@umetrics_cli.group("ga4")
def ga4_group() -> None:
    """The GA4 connector: status, sync, event forwarding, encryption keys."""


@ga4_group.command("status")
@click.option("--scope", default=None)
def ga4_status(scope: str | None) -> None:
    """Whether GA4 is installed, configured and connected, and the linked property."""
    from .ga4.service import status

    click.echo(json.dumps(status(scope), indent=2))


@ga4_group.command("sync")
@click.option("--scope", default=None, help="One scope (default: every linked scope).")
@click.option("--days", type=click.IntRange(min=1, max=400), default=None)
def ga4_sync(scope: str | None, days: int | None) -> None:
    """Pull GA4 daily figures into the stat store now; exit 1 if a scope failed."""
    from .ga4.service import require_libraries
    from .ga4.sync import linked_scopes, sync_scope

    try:
        require_libraries()
        scopes = [scope] if scope else linked_scopes()
        if not scopes:
            click.echo("no scope has a linked GA4 property")
            return
        failed = 0
        for name in scopes:
            result = sync_scope(name, days=days)
            if result.error:
                failed += 1
                click.echo(f"{name}: FAILED {result.error}")
            else:
                click.echo(
                    f"{name}: {result.readings} readings for {result.days} days "
                    f"({result.date_from} .. {result.date_to})"
                )
    except UMetricsError as exc:
        raise _fail(exc) from exc
    if failed:
        raise click.exceptions.Exit(1)


@ga4_group.command("forward")
@click.option("--scope", default=None, help="One scope (default: every linked scope).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Ask GA4's validation server (records nothing); the watermark stays.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Events per scope.")
def ga4_forward(scope: str | None, dry_run: bool, limit: int | None) -> None:
    """Send new UMETRICS_GA4_FORWARD_EVENTS events to GA4 now; exit 1 if some were not taken."""
    from .ga4.forwarding import DEFAULT_LIMIT, forward_scope, forwarding_scopes

    try:
        scopes = [scope] if scope else forwarding_scopes()
        if not scopes:
            click.echo("no scope has a linked GA4 property")
            return
        failed = False
        for name in scopes:
            result = forward_scope(name, limit=limit or DEFAULT_LIMIT, dry_run=dry_run)
            prefix = f"{result.scope_id}{' (dry run)' if dry_run else ''}"
            if result.reason is not None:
                failed = failed or scope is not None
                click.echo(
                    f"{prefix}: not forwarded: {result.reason}; remaining {result.remaining}"
                )
                continue
            failed = failed or result.failed > 0
            verb = "valid" if dry_run else "sent"
            click.echo(
                f"{prefix}: {verb} {result.sent}, failed {result.failed}, "
                f"skipped {result.skipped_total}, remaining {result.remaining}"
            )
            for reason, count in sorted(result.skipped.items()):
                click.echo(f"  skipped {count}: {reason}")
            for parameter, count in sorted(result.dropped.items()):
                click.echo(f"  parameter left out {count}x: {parameter}")
            for error in result.errors:
                click.echo(f"  error: {error}")
    except UMetricsError as exc:
        raise _fail(exc) from exc
    if failed:
        raise click.exceptions.Exit(1)


@ga4_group.command("gen-encryption-key")
@click.option("--key-id", default="k1", show_default=True)
def gen_encryption_key(key_id: str) -> None:
    """Print a new key for secrets at rest, as environment variables."""
    from .crypto import generate_key

    click.echo(f"UMETRICS_ENCRYPTION_KEY_CURRENT={key_id}")
    click.echo(f"UMETRICS_ENCRYPTION_KEY_{key_id}={generate_key()}")


@ga4_group.command("reencrypt-secrets")
def reencrypt_secrets() -> None:
    """Rewrite every stored secret under the current key (after a rotation)."""
    from .ga4.secrets import reencrypt_all

    try:
        result = reencrypt_all(actor="cli")
    except UMetricsError as exc:
        raise _fail(exc) from exc
    click.echo(
        f"re-encrypted under {result.key_id}: {result.credentials} credentials, "
        f"{result.mp_secrets} MP secrets, {result.oauth_verifiers} OAuth flows"
    )
