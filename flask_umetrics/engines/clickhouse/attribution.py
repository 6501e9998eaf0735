"""Attribution in ClickHouse SQL, with the rules of ``queries/attribution.py``: touchpoints (UTM
keys or an external referrer host) of every event in ``[date_from - lookback, date_to)``, the
same text clean-up and channel rules, and per conversion the touchpoints of its person inside
``[conversion - lookback, conversion]``, ordered by ``(ts, seq)`` (SQL: ``(ts, id)``). Instead of a
range join, each person's conversions and touchpoints are gathered into arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...queries import attribution as rules
from .expressions import Params, bare_context, person_events, prop_number, prop_text
from .runner import rows

if TYPE_CHECKING:
    from ...queries.context import ReportContext


def _in(value: str, options: tuple[str, ...], params: Params) -> str:
    return f"ifNull(has({params.bind(list(options), 'Array(String)')}, {value}), 0)"


def _host_is(host: str, domain: str, params: Params) -> str:
    bound = params.bind(domain, "String")
    return f"ifNull({host} = {bound} OR endsWith({host}, concat('.', {bound})), 0)"


def _host_named(host: str, name: str, params: Params) -> str:
    bound = params.bind(name, "String")
    return (
        f"ifNull(startsWith({host}, concat({bound}, '.')) OR "
        f"position({host}, concat('.', {bound}, '.')) > 0, 0)"
    )


def _social(value: str, params: Params) -> str:
    return " OR ".join(
        [
            _in(value, rules.SOCIAL_NAMES + rules.SOCIAL_DOMAINS, params),
            *(_host_named(value, name, params) for name in rules.SOCIAL_NAMES),
            *(_host_is(value, domain, params) for domain in rules.SOCIAL_DOMAINS),
        ]
    )


def _channel(params: Params) -> str:
    has_utm = "(source IS NOT NULL OR medium IS NOT NULL OR campaign IS NOT NULL)"
    search = " OR ".join(_host_named("ext_host", name, params) for name in rules.SEARCH_ENGINES)
    email = params.bind("email", "String")
    affiliate = params.bind("affiliate", "String")
    return (
        f"multiIf({_in('medium', rules.PAID_SEARCH_MEDIUMS, params)}, 'paid_search', "
        f"{_in('medium', rules.DISPLAY_MEDIUMS, params)}, 'display', "
        f"{_in('medium', rules.SOCIAL_MEDIUMS, params)} OR {_social('source', params)} OR "
        f"{_social('ext_host', params)}, 'social', "
        f"ifNull(medium = {email}, 0) OR {_in('source', rules.EMAIL_SOURCES, params)}, 'email', "
        f"ifNull(medium = {affiliate}, 0), 'affiliate', "
        f"NOT {has_utm} AND ({search}), 'organic_search', "
        f"{has_utm}, 'other_campaign', 'referral')"
    )


def touch_fields(params: Params, properties: str = "properties") -> str:
    """The columns of ``queries/attribution.py:touch_fields`` from the JSON column
    ``properties``: ``source, medium, campaign, referrer_text``."""

    def clean(key: str) -> str:
        return f"nullIf(trimBoth({prop_text(properties, key, params)}), '')"

    return (
        f"lowerUTF8({clean('utm_source')}) AS source, "
        f"lowerUTF8({clean('utm_medium')}) AS medium, {clean('utm_campaign')} AS campaign, "
        f"lowerUTF8(coalesce({clean('$referrer')}, {clean('referrer')})) AS referrer_text"
    )


def with_hosts(raw: str, hosts: tuple[str, ...], params: Params) -> str:
    """``raw`` (a SELECT with :func:`touch_fields`) plus ``ext_host``, as
    ``queries/attribution.py:with_hosts``."""
    direct = params.bind("$direct", "String")
    host = (
        "SELECT *, if(startsWith(host0, 'www.'), substring(host0, 5), host0) AS host FROM ("
        "SELECT *, substring(cut, 1, position(cut, '/') - 1) AS host0 FROM ("
        "SELECT *, concat(replaceAll(replaceAll(replaceAll(rest, '?', '/'), '#', '/'), ':', '/'),"
        " '/') AS cut FROM ("
        "SELECT *, if(position(ref, '://') > 0, substring(ref, position(ref, '://') + 3), ref) "
        "AS rest FROM ("
        f"SELECT *, if(ifNull(referrer_text = {direct}, 0), NULL, referrer_text) AS ref "
        f"FROM ({raw})))))"
    )
    own = " OR ".join(["ifNull(host = '', 0)", *(_host_is("host", h, params) for h in hosts)])
    return f"SELECT *, if({own}, NULL, host) AS ext_host FROM ({host})"


def channel_of(params: Params) -> str:
    """``queries/attribution.py:channel_of`` over a :func:`with_hosts` row."""
    touched = (
        "source IS NOT NULL OR medium IS NOT NULL OR campaign IS NOT NULL OR ext_host IS NOT NULL"
    )
    direct = params.bind(rules.DIRECT, "String")
    return f"if({touched}, toString(assumeNotNull({_channel(params)})), {direct})"


def _touchpoints(
    ctx: ReportContext, params: Params, lookback_us: int, group_by: str, hosts: tuple[str, ...]
) -> str:
    """``person_id, us, seq, touch_key`` of every touchpoint (no report filter or sample: the
    SQL path reads touchpoints of every event, as here)."""
    touch_keys = " OR ".join(
        f"({prop_text('properties', key, params)} IS NOT NULL)" for key in rules._TOUCH_KEYS
    )
    source = bare_context(ctx.scope_id)
    base = person_events(
        source, params, bounds=(ctx.from_us - lookback_us, ctx.to_us), where=[f"({touch_keys})"]
    )
    raw = f"SELECT person_id, us, seq, {touch_fields(params)} FROM {base}"
    staged = with_hosts(raw, hosts, params)
    none = params.bind(rules.NONE_KEY, "String")
    if group_by == "channel":
        key = _channel(params)
    elif group_by == "source":
        key = f"coalesce(source, ext_host, {none})"
    else:
        key = f"coalesce(campaign, {none})"
    return (
        f"SELECT person_id, us, seq, toString(assumeNotNull({key})) AS touch_key FROM "
        f"({staged}) WHERE source IS NOT NULL OR medium IS NOT NULL OR campaign IS NOT NULL "
        "OR ext_host IS NOT NULL"
    )


def credits(
    ctx: ReportContext,
    *,
    conversion_event: str,
    model: str,
    lookback_us: int,
    value_property: str | None,
    group_by: str,
    hosts: tuple[str, ...],
) -> tuple[int, list[tuple[Any, ...]]]:
    """``(conversions, [(key, share n, credits, value)])``: the rows the SQL path sums."""
    params = Params()
    touches = _touchpoints(ctx, params, lookback_us, group_by, hosts)
    value = (
        f"ifNull({prop_number('properties', value_property, params)}, 0.0)"
        if value_property
        else "0.0"
    )
    conversions = person_events(
        ctx, params, where=[f"event = {params.bind(conversion_event, 'String')}"]
    )
    lookback = params.bind(lookback_us, "Int64")
    per_person = (
        "SELECT groupArrayIf((us, seq, amount), kind = 1) AS conversions, "
        "arraySort(t -> (t.1, t.2), groupArrayIf((us, seq, touch_key), kind = 2)) AS touches "
        "FROM ("
        f"SELECT person_id, 1 AS kind, us, seq, toFloat64({value}) AS amount, '' AS touch_key "
        f"FROM {conversions} UNION ALL "
        f"SELECT person_id, 2 AS kind, us, seq, 0.0 AS amount, touch_key FROM ({touches})"
        ") GROUP BY person_id HAVING length(conversions) > 0"
    )
    chosen = (
        "SELECT conversion.3 AS amount, arrayFilter(t -> t.1 >= conversion.1 - "
        f"{lookback} AND t.1 <= conversion.1, touches) AS inside FROM ({per_person}) "
        "ARRAY JOIN conversions AS conversion"
    )
    direct = params.bind(rules.DIRECT, "String")
    if model == "linear":
        keys = f"if(empty(inside), [{direct}], arrayMap(t -> t.3, inside))"
        share = "greatest(length(inside), 1)"
    elif model == "first_touch":
        keys = f"[if(empty(inside), {direct}, inside[1].3)]"
        share = "1"
    else:
        keys = f"[if(empty(inside), {direct}, inside[length(inside)].3)]"
        share = "1"
    grouped = rows(
        "SELECT credit_key, share, count(), sum(amount) FROM ("
        f"SELECT amount, {share} AS share, {keys} AS credit_keys FROM ({chosen})) "
        "ARRAY JOIN credit_keys AS credit_key GROUP BY credit_key, share "
        "ORDER BY credit_key, share",
        params,
    )
    counting = Params()
    every = person_events(
        ctx, counting, where=[f"event = {counting.bind(conversion_event, 'String')}"]
    )
    total = int(rows(f"SELECT count() FROM {every}", counting)[0][0])
    return total, grouped
