"""Who used the two cores during a phase: the load generator, the app, the sandbox payment
provider, everything else (PostgreSQL, Redis, the bench's parent), read from /proc before and
after the measured window."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class CpuSample:
    at: float  # monotonic
    machine_busy: float  # CPU seconds all cores spent not idle, since boot
    app: float  # CPU seconds of the app's process group (granian main + workers)
    client: float  # CPU seconds of the load-generator processes
    provider: float = 0.0  # CPU seconds of the payment provider's process group


@dataclass(frozen=True)
class CpuShare:
    """Average cores used over a window (2.0 = both cores of this machine, flat out)."""

    wall_seconds: float
    machine: float
    app: float
    client: float
    provider: float = 0.0

    @property
    def other(self) -> float:
        """PostgreSQL, Redis and anything else on the box."""
        return max(0.0, self.machine - self.app - self.client - self.provider)

    def as_dict(self, cores: int) -> dict[str, float]:
        return {
            "wall_seconds": round(self.wall_seconds, 3),
            "machine_cores": round(self.machine, 3),
            "app_cores": round(self.app, 3),
            "load_generator_cores": round(self.client, 3),
            "payment_provider_cores": round(self.provider, 3),
            "postgres_redis_other_cores": round(self.other, 3),
            "load_generator_share_of_machine": round(self.client / cores, 3),
        }


def sample_cpu(
    app_group: int | None, client_pids: list[int], provider_group: int | None = None
) -> CpuSample:
    return CpuSample(
        at=time.monotonic(),
        machine_busy=_machine_busy(),
        app=_group_cpu(app_group),
        client=sum(_process_cpu(pid) for pid in client_pids),
        provider=_group_cpu(provider_group),
    )


def share_between(before: CpuSample, after: CpuSample) -> CpuShare:
    wall = max(1e-9, after.at - before.at)
    return CpuShare(
        wall_seconds=wall,
        machine=(after.machine_busy - before.machine_busy) / wall,
        app=(after.app - before.app) / wall,
        client=(after.client - before.client) / wall,
        provider=(after.provider - before.provider) / wall,
    )


def _machine_busy() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / TICKS  # guest time is already inside user time


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _process_cpu(pid: int) -> float:
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _group_cpu(group: int | None) -> float:
    return sum(_process_cpu(pid) for pid in _group_members(group)) if group else 0.0


def _group_members(group: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and int(fields[2]) == group:
                members.append(int(entry))
    return members
