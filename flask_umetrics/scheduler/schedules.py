"""Schedules: when a job fires, and which period a moment belongs to.

A schedule is a crontab line (``0 * * * *``, in ``UMETRICS_TIMEZONE``) or ``every N{s,m,h,d}``
(aligned to the Unix epoch, so every process computes the same periods). The period of a
moment is the latest fire time at or before it: the key under which a job run is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

_EVERY = re.compile(r"^every\s+(\d+)\s*([smhd])$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_LOOKBACK = timedelta(days=800)


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; build with :meth:`parse`."""

    spec: str
    timezone: str
    interval_seconds: int | None

    @classmethod
    def parse(cls, spec: str, tz: str) -> Schedule:
        """Parse ``spec``; raises ValueError with a readable message when it is not valid."""
        text = spec.strip()
        every = _EVERY.match(text)
        if every:
            seconds = int(every.group(1)) * _UNIT_SECONDS[every.group(2).lower()]
            if seconds < 1:
                raise ValueError("an 'every' schedule needs a positive interval")
            return cls(text, tz, seconds)
        try:
            CronTrigger.from_crontab(text, timezone=ZoneInfo(tz))
        except ValueError as exc:
            raise ValueError(
                f"{text!r} is neither a crontab line ('0 * * * *') nor 'every N[s|m|h|d]': {exc}"
            ) from exc
        return cls(text, tz, None)

    def trigger(self) -> BaseTrigger:
        if self.interval_seconds is not None:
            return IntervalTrigger(
                seconds=self.interval_seconds, start_date=_EPOCH, timezone=timezone.utc
            )
        return CronTrigger.from_crontab(self.spec, timezone=ZoneInfo(self.timezone))

    def period_start(self, now: datetime) -> datetime:
        """The latest fire time at or before ``now`` (UTC)."""
        now = now.astimezone(timezone.utc)
        if self.interval_seconds is not None:
            elapsed = int((now - _EPOCH).total_seconds())
            return _EPOCH + timedelta(seconds=elapsed - elapsed % self.interval_seconds)
        trigger = self.trigger()
        lookback = timedelta(minutes=2)
        while True:
            fire = trigger.get_next_fire_time(None, now - lookback)
            if fire is not None and fire <= now:
                break
            if lookback > _MAX_LOOKBACK:
                raise ValueError(f"schedule {self.spec!r} did not fire in the last 800 days")
            lookback *= 2
        while True:
            following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
            if following is None or following > now:
                start: datetime = fire.astimezone(timezone.utc)
                return start
            fire = following

    def period_key(self, now: datetime) -> str:
        return self.period_start(now).strftime("%Y-%m-%dT%H:%M:%SZ")
