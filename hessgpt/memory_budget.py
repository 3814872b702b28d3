"""Memory budgets: sizes that come from a file or a flag are checked against the machine before
anything is allocated, so an absurd value is a one-line error instead of an allocator failure."""

from __future__ import annotations

import os
import re
from typing import Any

from hessgpt.errors import HessError

_LAYER_RE = re.compile(r"^(?:transformer\.)?h\.(\d+)\.")


def available_bytes() -> int:
    """Memory the process may still use: MemAvailable from /proc/meminfo, else the physical RAM."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(size: int) -> str:
    return f"{size / (1 << 30):.1f} GiB"


def require_memory(size: int, what: str, hint: str) -> None:
    """Refuse ``size`` bytes for ``what`` when the machine does not have them."""
    free = available_bytes()
    if size > free:
        raise HessError(f"{what} would need {_gib(size)} of memory, only {_gib(free)} is available; {hint}")


def check_config_fits(config: Any, state_dict: dict[str, Any] | None, source: str) -> None:
    """A config read from a file is checked against the weights actually present and against the
    machine's memory before any module is built (even on the meta device: that costs time per layer)."""
    from hessgpt.config import count_parameters

    if state_dict is not None:
        layers = {int(m.group(1)) for key in state_dict if (m := _LAYER_RE.match(str(key)))}
        if len(layers) != config.n_layer:
            raise HessError(f"{source}: the config says n_layer = {config.n_layer} but the weights hold "
                            f"{len(layers)} layer(s)")
    size = 4 * count_parameters(config)
    if config.arch == "llama":
        size += 8 * config.block_size * (config.head_dim // 2)  # the rotary table of the inference engine
    require_memory(size, f"{source}: the model its config describes",
                   "the config's sizes (n_layer, n_embd, vocab_size, block_size) are wrong for this file")
