"""Weights read from a file are checked before a model is built from them.

A NaN or an infinity anywhere in the weights reaches every forward pass: answers become the argmax of
NaN logits and likelihoods NaN, so a grade computed from them would be a number with no meaning. Such a
file is refused at load, naming the first bad tensor, rather than graded with a warning.
"""

from __future__ import annotations

from typing import Any

import torch

from hessgpt.errors import HessError


def check_weights(state_dict: dict[str, Any], source: str) -> None:
    """Every entry is a floating-point tensor holding only finite numbers."""
    for name, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise HessError(f"{source}: weight {name} is a {type(tensor).__name__}, not a tensor")
        if not tensor.is_floating_point():
            raise HessError(f"{source}: weight {name} has dtype {str(tensor.dtype).removeprefix('torch.')}; "
                            "model weights must be floating point")
        if not tensor.numel():
            continue
        # The extremes hold a NaN or an infinity if any value does (NaN propagates), in one pass without
        # the boolean copy of the weights that isfinite makes.
        if not bool(torch.isfinite(torch.stack(torch.aminmax(tensor))).all()):
            bad = int(tensor.numel() - torch.isfinite(tensor).sum())
            raise HessError(f"{source}: weight {name} holds {bad} NaN or infinite value(s); the file is damaged "
                            "or the training diverged, so no grade would mean anything")
