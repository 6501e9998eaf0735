"""Attribution: which channels, sources or campaigns get the credit for conversions.

A touchpoint is an event carrying ``utm_source`` / ``utm_medium`` / ``utm_campaign`` or a
referrer (``$referrer``, else ``referrer``) from a host that is not one of the site's own.
Each touchpoint gets a channel from the rules of :func:`_channel`, evaluated in SQL. Every
conversion event inside ``[date_from, date_to)`` looks at its person's touchpoints (all merged
distinct ids) with ``conversion.ts - lookback <= touch.ts <= conversion.ts`` and credits them
by the model; a conversion without one is credited to ``direct``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, and_, case, cast, func, literal, not_, null, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement, Subquery
from sqlalchemy.sql.expression import FunctionElement

from ..db.tables import events
from ..engines.clickhouse.runner import is_clickhouse
from ..errors import ValidationError
from .connection import report_connection
from .context import Count, ReportContext
from .sql import person_events, prop_number, prop_text

MODELS: tuple[str, ...] = ("first_touch", "last_touch", "linear")
GROUPS: tuple[str, ...] = ("channel", "source", "campaign")
DIRECT = "direct"
#: Every channel key the rules of :func:`_channel` (and ClickHouse's copy) can give, with the
#: label the dashboard shows. The keys are the REST API's contract; the labels are for people.
CHANNEL_LABELS: dict[str, str] = {
    "paid_search": "Paid search",
    "display": "Display",
    "social": "Social",
    "email": "Email",
    "affiliate": "Affiliate",
    "organic_search": "Organic search",
    "other_campaign": "Other campaign",
    "referral": "Referral",
    DIRECT: "Direct",
}
NONE_KEY = "(none)"
MAX_LOOKBACK_DAYS = 3650
_DAY_US = 86_400 * 1_000_000

PAID_SEARCH_MEDIUMS = ("cpc", "ppc", "paid", "paidsearch", "paid_search", "paid-search")
DISPLAY_MEDIUMS = ("display", "banner", "cpm")
SOCIAL_MEDIUMS = ("social", "social-network", "social-media", "sm", "paid_social")
#: A social network by name: ``facebook`` as a utm_source, or a host with a ``facebook.`` label.
SOCIAL_NAMES = (
    "facebook",
    "instagram",
    "twitter",
    "linkedin",
    "reddit",
    "youtube",
    "tiktok",
    "pinterest",
)
#: Social networks known by their domain: the host itself or any subdomain of it.
SOCIAL_DOMAINS = ("x.com", "t.co")
EMAIL_SOURCES = ("newsletter", "email")
_TOUCH_KEYS = ("utm_source", "utm_medium", "utm_campaign", "$referrer", "referrer")
SEARCH_ENGINES = ("google", "bing", "duckduckgo", "yahoo", "baidu", "yandex", "ecosia")


def channel_label(key: str) -> str:
    """The label of a channel key (``organic_search`` -> ``Organic search``); other text
    (a source or campaign) unchanged."""
    return CHANNEL_LABELS.get(key, key)


@dataclass(frozen=True)
class AttributionRow:
    key: str
    conversions: Count  # whole for first/last touch, fractions of credit for linear
    value: float


@dataclass(frozen=True)
class AttributionResult:
    model: str
    group_by: str
    conversions: Count
    rows: list[AttributionRow]
    lookback_days: int = 30
    sampled: float | None = None


class _strpos(FunctionElement[int]):
    """1-based position of ``part`` in ``text``, 0 when absent (``instr`` / ``strpos``)."""

    type = Integer()
    inherit_cache = True


@compiles(_strpos, "postgresql")
def _strpos_pg(element: _strpos, compiler: Any, **kw: Any) -> str:
    text, part = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"strpos({text}, {part})"


@compiles(_strpos, "sqlite")
def _strpos_sqlite(element: _strpos, compiler: Any, **kw: Any) -> str:
    text, part = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"instr({text}, {part})"


def normalize_host(text: str) -> str:
    """The host the SQL of :func:`_touchpoints` derives from a referrer, in Python: lower
    case, without scheme, path, query, fragment, port or a leading ``www.``."""
    host = text.strip().lower()
    if "://" in host:
        host = host.split("://", 1)[1]
    for separator in "/?#:":
        host = host.split(separator, 1)[0]
    return host[4:] if host.startswith("www.") else host


def own_host_names(own_hosts: tuple[str, ...]) -> tuple[str, ...]:
    """The ``own_hosts`` parameter normalized (:func:`normalize_host`), each a host name."""
    hosts = tuple(normalize_host(h) for h in own_hosts)
    if any(not h for h in hosts):
        raise ValidationError("own_hosts", "must be host names")
    return hosts


def _clean(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """Trimmed text, NULL when empty."""
    return func.nullif(func.trim(value), "")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _host_is(host: ColumnElement[Any], domain: str) -> ColumnElement[bool]:
    """``host`` is ``domain`` or one of its subdomains."""
    return or_(host == domain, host.like("%." + _like_escape(domain), escape="\\"))


def _host_named(host: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``host`` has ``name`` as a label followed by more labels (``google.co.uk``,
    ``www.google.com``, ``news.google.de``; not ``notgoogle.com``)."""
    return or_(host.like(name + ".%"), host.like("%." + name + ".%"))


def _social(value: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(
        value.in_(SOCIAL_NAMES + SOCIAL_DOMAINS),
        *(_host_named(value, name) for name in SOCIAL_NAMES),
        *(_host_is(value, domain) for domain in SOCIAL_DOMAINS),
    )


def _channel(
    source: ColumnElement[Any],
    medium: ColumnElement[Any],
    campaign: ColumnElement[Any],
    ext_host: ColumnElement[Any],
) -> ColumnElement[str]:
    """The channel rules, first match wins (NULL comparisons are simply not true)."""
    has_utm = or_(source.is_not(None), medium.is_not(None), campaign.is_not(None))
    search = or_(*(_host_named(ext_host, name) for name in SEARCH_ENGINES))
    return case(
        (medium.in_(PAID_SEARCH_MEDIUMS), literal("paid_search")),
        (medium.in_(DISPLAY_MEDIUMS), literal("display")),
        (or_(medium.in_(SOCIAL_MEDIUMS), _social(source), _social(ext_host)), literal("social")),
        (or_(medium == "email", source.in_(EMAIL_SOURCES)), literal("email")),
        (medium == "affiliate", literal("affiliate")),
        (and_(not_(has_utm), search), literal("organic_search")),
        (has_utm, literal("other_campaign")),
        else_=literal("referral"),
    )


def touch_fields(props: ColumnElement[Any]) -> list[ColumnElement[Any]]:
    """``source``, ``medium`` (lower case), ``campaign`` and ``ref`` (the lower-case referrer,
    NULL for PostHog's ``$direct``) of an event, for :func:`with_hosts`."""
    source = func.lower(_clean(prop_text(props, "utm_source")))
    medium = func.lower(_clean(prop_text(props, "utm_medium")))
    campaign = _clean(prop_text(props, "utm_campaign"))
    referrer = func.lower(
        func.coalesce(_clean(prop_text(props, "$referrer")), _clean(prop_text(props, "referrer")))
    )
    return [
        source.label("source"),
        medium.label("medium"),
        campaign.label("campaign"),
        # PostHog's JS sends "$direct" when there is no referrer.
        case((referrer == "$direct", null()), else_=referrer).label("ref"),
    ]


def with_hosts(raw: Subquery, own_hosts: tuple[str, ...]) -> Subquery:
    """``raw`` (with :func:`touch_fields`' columns) plus ``ext_host``: the referrer's host
    (:func:`normalize_host`), NULL when there is none or it is one of ``own_hosts``.

    Built in stages (one subquery each) so each derived text is written once in the SQL.
    """
    scheme = _strpos(raw.c.ref, literal("://"))
    rest = case((scheme > 0, func.substr(raw.c.ref, scheme + 3)), else_=raw.c.ref)
    stage = select(*raw.c, rest.label("rest")).subquery("touch_rest")

    cut: ColumnElement[Any] = stage.c.rest
    for separator in "?#:":
        cut = func.replace(cut, separator, "/")
    cut = cut.concat("/")
    host: ColumnElement[Any] = func.substr(cut, 1, _strpos(cut, literal("/")) - 1)
    stage = select(*stage.c, host.label("host0")).subquery("touch_host0")

    host = case((stage.c.host0.like("www.%"), func.substr(stage.c.host0, 5)), else_=stage.c.host0)
    stage = select(*stage.c, host.label("host")).subquery("touch_host")

    own = [stage.c.host == ""] + [_host_is(stage.c.host, h) for h in own_hosts]
    ext_host = case((or_(*own), null()), else_=stage.c.host)
    return select(*stage.c, ext_host.label("ext_host")).subquery("touch_ext")


def channel_of(c: Any) -> ColumnElement[str]:
    """The channel of a :func:`with_hosts` row, ``direct`` when it has no UTM nor external
    referrer."""
    has_utm = or_(c.source.is_not(None), c.medium.is_not(None), c.campaign.is_not(None))
    return case(
        (
            or_(has_utm, c.ext_host.is_not(None)),
            _channel(c.source, c.medium, c.campaign, c.ext_host),
        ),
        else_=literal(DIRECT),
    )


def _touchpoints(
    ctx: ReportContext, lookback_us: int, group_by: str, own_hosts: tuple[str, ...]
) -> Subquery:
    """``person_id, id, ts, key`` of every touchpoint that can fall in some lookback window."""
    props = events.c.properties
    base = person_events(ctx.scope_id).where(
        events.c.ts >= ctx.from_us - lookback_us,
        events.c.ts < ctx.to_us,
        or_(*(prop_text(props, key).is_not(None) for key in _TOUCH_KEYS)),
    )
    raw = base.with_only_columns(
        base.selected_columns.person_id, events.c.id, events.c.ts, *touch_fields(props)
    ).subquery("touch_raw")
    stage = with_hosts(raw, own_hosts)

    c = stage.c
    has_utm = or_(c.source.is_not(None), c.medium.is_not(None), c.campaign.is_not(None))
    key: ColumnElement[Any]
    if group_by == "channel":
        key = _channel(c.source, c.medium, c.campaign, c.ext_host)
    elif group_by == "source":
        key = func.coalesce(c.source, c.ext_host, literal(NONE_KEY))
    else:
        key = func.coalesce(c.campaign, literal(NONE_KEY))
    return (
        select(c.person_id, c.id, c.ts, key.label("key"))
        .where(or_(has_utm, c.ext_host.is_not(None)))
        .subquery("touches")
    )


def attribution(
    ctx: ReportContext,
    *,
    conversion_event: str,
    model: str = "last_touch",
    lookback_days: int = 30,
    value_property: str | None = None,
    group_by: str = "channel",
    own_hosts: tuple[str, ...] = (),
) -> AttributionResult:
    """Credited conversions and value per key, by conversions descending then key."""
    if not conversion_event:
        raise ValidationError("conversion_event", "is required")
    if model not in MODELS:
        raise ValidationError("model", f"must be one of {', '.join(MODELS)}")
    if group_by not in GROUPS:
        raise ValidationError("group_by", f"must be one of {', '.join(GROUPS)}")
    if not 0 <= lookback_days <= MAX_LOOKBACK_DAYS:
        raise ValidationError("lookback_days", f"must be between 0 and {MAX_LOOKBACK_DAYS}")
    hosts = own_host_names(own_hosts)
    lookback_us = lookback_days * _DAY_US
    totals: dict[str, list[float]] = {}
    if is_clickhouse():
        from ..engines.clickhouse.attribution import credits

        total, grouped = credits(
            ctx,
            conversion_event=conversion_event,
            model=model,
            lookback_us=lookback_us,
            value_property=value_property,
            group_by=group_by,
            hosts=hosts,
        )
        for key, share, credited, credited_value in grouped:
            entry = totals.setdefault(key, [0.0, 0.0])
            entry[0] += int(credited) / int(share)
            entry[1] += float(credited_value or 0.0) / int(share)
    else:
        total = _sql_credits(
            ctx, totals, conversion_event, model, lookback_us, value_property, group_by, hosts
        )
    rows = [
        AttributionRow(key, ctx.scale(credited), ctx.scale(credited_value))
        for key, (credited, credited_value) in totals.items()
    ]
    rows.sort(key=lambda row: (-row.conversions, row.key))
    return AttributionResult(model, group_by, ctx.scale(total), rows, lookback_days, ctx.sample)


def _sql_credits(
    ctx: ReportContext,
    totals: dict[str, list[float]],
    conversion_event: str,
    model: str,
    lookback_us: int,
    value_property: str | None,
    group_by: str,
    hosts: tuple[str, ...],
) -> int:
    """The SQL engine: adds each key's credited conversions and value to ``totals``; returns
    the number of conversions."""
    touches = _touchpoints(ctx, lookback_us, group_by, hosts)

    zero = cast(literal(0.0), Float)
    value = (
        func.coalesce(prop_number(events.c.properties, value_property), zero)
        if value_property
        else zero
    )
    base = person_events(ctx.scope_id).where(
        events.c.event == conversion_event, *ctx.in_range(), *ctx.event_filters()
    )
    conversions = ctx.rows(
        base.with_only_columns(
            base.selected_columns.person_id,
            events.c.id.label("conv_id"),
            events.c.ts.label("conv_ts"),
            value.label("value"),
        ),
        "conversions",
    )
    window = and_(
        touches.c.person_id == conversions.c.person_id,
        touches.c.ts >= conversions.c.conv_ts - lookback_us,
        touches.c.ts <= conversions.c.conv_ts,
    )
    per_conversion = conversions.c.conv_id
    pairs = (
        select(
            conversions.c.value,
            case((touches.c.id.is_(None), literal(DIRECT)), else_=touches.c.key).label("key"),
            func.count().over(partition_by=per_conversion).label("n"),
            func.row_number()
            .over(partition_by=per_conversion, order_by=(touches.c.ts.asc(), touches.c.id.asc()))
            .label("first_rank"),
            func.row_number()
            .over(partition_by=per_conversion, order_by=(touches.c.ts.desc(), touches.c.id.desc()))
            .label("last_rank"),
        )
        .select_from(conversions.outerjoin(touches, window))
        .subquery("pairs")
    )
    credits = func.count().label("credits")
    value_sum = func.sum(pairs.c.value).label("value")
    if model == "linear":
        # Grouped by the share 1/n so Python divides once per group: exact, same on both DBs.
        query = (
            select(pairs.c.key, pairs.c.n, credits, value_sum)
            .group_by(pairs.c.key, pairs.c.n)
            .order_by(pairs.c.key, pairs.c.n)
        )
    else:
        rank = pairs.c.first_rank if model == "first_touch" else pairs.c.last_rank
        query = (
            select(pairs.c.key, credits, value_sum)
            .where(rank == 1)
            .group_by(pairs.c.key)
            .order_by(pairs.c.key)
        )
    with report_connection() as connection:
        total = connection.execute(select(func.count()).select_from(conversions)).scalar_one()
        for row in connection.execute(query):
            share = row.n if model == "linear" else 1
            entry = totals.setdefault(row.key, [0.0, 0.0])
            entry[0] += row.credits / share
            entry[1] += float(row.value or 0.0) / share
    return int(total)
