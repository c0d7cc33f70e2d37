"""Where the CPU went during one measurement: revwallet, the load generator, and the whole machine (in cores).
On a 2-core machine this explains most of a ratio: whatever wrk and revwallet burn, PostgreSQL cannot use."""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / _TICK


def _process(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Start before the load generator runs, `stop()` after it has exited (its usage is counted once reaped)."""

    def __init__(self, server_pid: int | None):
        self.pid = server_pid
        self.wall = time.monotonic()
        self.machine = _machine_busy()
        self.server = _process(server_pid)
        self.children = _children()

    def stop(self) -> dict[str, float | None]:
        wall = time.monotonic() - self.wall
        machine, server = _machine_busy(), _process(self.pid)

        def cores(before: float | None, after: float | None) -> float | None:
            return None if before is None or after is None or wall <= 0 else round((after - before) / wall, 2)

        return {
            "cores_revwallet": cores(self.server, server),
            "cores_load_generator": cores(self.children, _children()),
            "cores_machine": cores(self.machine, machine),
        }
