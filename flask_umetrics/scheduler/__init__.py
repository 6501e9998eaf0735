"""Scheduled jobs: collector snapshots and retention pruning, run once per period."""

from .runner import SchedulerRunner, start_in_process_scheduler
from .schedules import Schedule

__all__ = ["Schedule", "SchedulerRunner", "start_in_process_scheduler"]
