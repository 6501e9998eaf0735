"""Memory of gunicorn workers, read from ``/proc/<pid>/status`` (Linux only).

The ingestion process's figure is the peak RSS (``VmHWM``) of the ``bench.ingest_app`` workers
after the REST run; the baseline is the same figure for workers of ``bench.bare_app`` (a trivial
Flask app) after as many requests.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from pathlib import Path

from bench.analytics import gunicorn_serving, log


@dataclass(frozen=True)
class WorkerMemory:
    """The largest ``VmHWM`` and ``VmRSS`` among a master's workers, in KiB."""

    peak_kib: int
    rss_kib: int
    workers: int

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def worker_pids(master_pid: int) -> list[int]:
    """The children of ``master_pid``, found through each process's ``stat`` (its 4th field)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended while we looked
            continue
        # The command name may hold spaces and parentheses: fields follow the last ")".
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == master_pid:
            found.append(int(entry.name))
    return sorted(found)


def status_kib(pid: int, name: str) -> int:
    """A ``kB`` line of ``/proc/<pid>/status``, e.g. ``VmHWM``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1])
    raise KeyError(f"{name} not in /proc/{pid}/status")


def read_workers(master_pid: int) -> WorkerMemory:
    pids = worker_pids(master_pid)
    if not pids:
        raise RuntimeError(f"gunicorn master {master_pid} has no workers")
    peaks = [status_kib(pid, "VmHWM") for pid in pids]
    rss = [status_kib(pid, "VmRSS") for pid in pids]
    log(f"  workers {pids}: VmHWM {peaks} KiB, VmRSS {rss} KiB")
    return WorkerMemory(max(peaks), max(rss), len(pids))


def bare_worker_memory(log_dir: Path, requests: int) -> WorkerMemory:
    """Serve ``bench.bare_app`` with ``gunicorn -w 2``, send ``requests`` GETs, read the workers."""
    log_path = log_dir / "gunicorn-bare.log"
    with gunicorn_serving("bench.bare_app:create_app()", {}, log_path, "/") as (port, process):
        for _ in range(requests):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("GET", "/")
                body = connection.getresponse().read()
            finally:
                connection.close()
            if body != b"ok":
                raise RuntimeError(f"bare app answered {body!r}")
        return read_workers(process.pid)
