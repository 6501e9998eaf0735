"""Browser, operating system and device type from the user agent, set at ingestion on active
events (inactive ones, such as ``$session_props``, are stored as sent).

Parsed once per distinct user agent with ua-parser (the maintained uap-core rules) and cached:
a site sees few distinct agents, and ingestion is hot. ``$device_type`` is ours: ua-parser names
devices (``iPhone``, ``SM-X700``), not their kind, so the kind follows the rules of
:func:`device_type`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ua_parser import parse

#: The properties ingestion sets (unless the event already has them).
UA_PROPERTIES = ("$browser", "$os", "$device_type")
MOBILE_OSES = ("iOS", "Android", "Windows Phone", "KaiOS", "BlackBerry OS")
DESKTOP_OSES = ("Windows", "Mac OS X", "macOS", "Linux", "Ubuntu", "Chrome OS", "Fedora")


def device_type(agent: str, os_family: str | None, device_brand: str | None) -> str:
    """``tablet`` (an iPad, a tablet brand, or Android without ``Mobile``), ``mobile`` (another
    phone OS), ``desktop`` (a desktop OS), else ``other``."""
    lowered = agent.lower()
    if "ipad" in lowered or "tablet" in lowered or (device_brand or "").endswith("_Tablet"):
        return "tablet"
    if os_family == "Android" and "mobile" not in lowered:
        return "tablet"
    if os_family in MOBILE_OSES or "mobile" in lowered:
        return "mobile"
    if os_family in DESKTOP_OSES:
        return "desktop"
    return "other"


@lru_cache(maxsize=4096)
def parse_user_agent(agent: str) -> tuple[tuple[str, str], ...]:
    """``(("$browser", ...), ("$os", ...), ("$device_type", ...))``, leaving out what the parser
    does not know (all of them when it knows neither browser nor OS); a tuple so the cached
    value cannot be changed by a caller."""
    found = parse(agent)
    browser = found.user_agent.family if found.user_agent else None
    os_family = found.os.family if found.os else None
    brand = found.device.brand if found.device else None
    known = [v if v and v != "Other" else None for v in (browser, os_family)]
    if not any(known):  # not a browser ua-parser knows: no guess at its device either
        return ()
    values = (*known, device_type(agent, os_family, brand))
    return tuple((key, value) for key, value in zip(UA_PROPERTIES, values, strict=True) if value)


def add_user_agent_properties(properties: dict[str, Any], agent: str) -> None:
    """Set ``$browser``, ``$os`` and ``$device_type`` from ``agent``; a value the event
    already carries wins."""
    if not agent:
        return
    for key, value in parse_user_agent(agent[:1000]):
        properties.setdefault(key, value)
