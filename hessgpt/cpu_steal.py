"""How much of the machine's CPU time the host took for other work while we measured.

On a virtual machine the host can run other guests on our vCPUs. Linux counts that time as "steal" in
/proc/stat. With a quarter of it stolen, the full bench took 345 s instead of 160 s and gave the same
answers. So a time means something only next to its steal share, and every timed run records it.
"""

from __future__ import annotations

from pathlib import Path

PROC_STAT = Path("/proc/stat")
# Above this share a run's times say more about the host than about the model.
NOTABLE_STEAL = 0.05


def read_cpu_times(path: Path = PROC_STAT) -> tuple[int, int] | None:
    """(steal, total) clock ticks of all CPUs since boot; None where the file or its steal field is missing."""
    try:
        with path.open() as f:
            line = f.readline(4096)
    except OSError:
        return None
    fields = line.split()
    # cpu user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already in user.
    if len(fields) < 9 or fields[0] != "cpu" or not all(f.isdigit() for f in fields[1:9]):
        return None
    ticks = [int(f) for f in fields[1:9]]
    return ticks[7], sum(ticks)


class StealMeter:
    """The stolen share of all CPU time from the meter's creation to each ``share()`` call."""

    def __init__(self, path: Path = PROC_STAT) -> None:
        self.path = path
        self.start = read_cpu_times(path)

    def share(self) -> float | None:
        """Stolen ticks over all ticks since the start, in [0, 1] to 4 places (a tick is 10 ms); None
        where /proc/stat does not say."""
        now = read_cpu_times(self.path)
        if self.start is None or now is None:
            return None
        steal, total = now[0] - self.start[0], now[1] - self.start[1]
        if total <= 0 or steal < 0:
            return None
        return round(min(1.0, steal / total), 4)


def steal_note(share: float | None) -> str:
    """What a notable share means for a run's times; "" when it is unknown or too small to matter."""
    if share is None or share < NOTABLE_STEAL:
        return ""
    return "the host ran other work on these CPUs, so its times are not comparable"
