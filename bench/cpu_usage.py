"""CPU seconds spent by the processes of a benchmark run, read from ``/proc`` (Linux).

Requests per second say how fast; CPU per request says where the time goes: the web workers,
the background worker, and the database server (PostgreSQL's backends; SQLite runs inside the
other two). Wall-clock ratios move with the machine's load, CPU per request far less.
"""

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its closing one.
    return [text[: text.index("(")].strip(), text[text.index("(") + 1 : text.rindex(")")]] + (
        text[text.rindex(")") + 2 :].split()
    )


def _all_stats() -> dict[int, list[str]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _stat(int(entry))
            if stat:
                stats[int(entry)] = stat
    return stats


def cpu_seconds(roots: dict[str, int], database_process: str | None = None) -> dict[str, float]:
    """CPU seconds (user + system) so far of each named process and its descendants, with
    ``database_process`` (``"postgres"``) of every process of that name as ``"database"``, and
    the machine's idle seconds as ``"idle"``."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(int(stat[3]), []).append(pid)

    def used(pid: int) -> float:
        stat = stats.get(pid)
        own = (int(stat[13]) + int(stat[14])) / _TICK if stat else 0.0
        return own + sum(used(child) for child in children.get(pid, ()))

    totals = {name: used(pid) for name, pid in roots.items()}
    totals["idle"] = machine_idle_s()
    if database_process:
        totals["database"] = sum(
            (int(s[13]) + int(s[14])) / _TICK for s in stats.values() if s[1] == database_process
        )
    return totals


def machine_idle_s() -> float:
    """Seconds the machine's cores have been idle (all cores summed), from ``/proc/stat``: a
    run that leaves cores idle is waiting on something other than the processor."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return (int(fields[3]) + int(fields[4])) / _TICK  # idle + iowait
