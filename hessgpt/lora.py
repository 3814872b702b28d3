"""Low-rank adapters (LoRA): train a few matrices beside frozen weights, then merge them.

A wrapped linear layer computes ``W x + (alpha / r) * B (A x)``. ``B`` starts at zero, so an untrained
adapter changes nothing; merging writes ``W + (alpha / r) * B @ A`` into the base weight, and a
merged layer remembers it so a second merge is a no-op.

An adapter file holds only the adapter tensors, the settings, and the base model's config and
sha256, so ``hessgpt lora merge`` can refuse a base the adapter was not trained on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from hessgpt.checkpoint import atomic_torch_save, safe_torch_load
from hessgpt.errors import HessError

ADAPTER_FORMAT = "hessgpt-lora"
ADAPTER_VERSION = 1

# Target groups -> the module names they cover, for both block families.
TARGET_GROUPS = {
    "attn": ("attn.c_attn", "attn.c_proj", "attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj"),
    "mlp": ("mlp.c_fc", "mlp.c_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"),
}


@dataclass
class LoraSpec:
    r: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("attn",)
    dropout: float = 0.0

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def to_dict(self) -> dict[str, Any]:
        return {"r": self.r, "alpha": self.alpha, "targets": list(self.targets), "dropout": self.dropout}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoraSpec:
        return cls(
            int(data["r"]), float(data["alpha"]), tuple(data["targets"]), float(data.get("dropout", 0.0))
        )


def parse_lora_spec(text: str) -> LoraSpec:
    """``r=8,alpha=16,targets=attn,mlp[,dropout=0.05]``: a bare word continues the previous list."""
    values: dict[str, list[str]] = {}
    key = None
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" in part:
            key, _, value = part.partition("=")
            key = key.strip()
            values[key] = [value.strip()]
        elif key == "targets":
            values[key].append(part)
        else:
            raise HessError(f"--lora: cannot read {part!r}; expected r=8,alpha=16,targets=attn,mlp")
    unknown = sorted(set(values) - {"r", "alpha", "targets", "dropout"})
    if unknown:
        raise HessError(f"--lora: unknown setting(s) {', '.join(unknown)}; use r, alpha, targets, dropout")
    try:
        r = int(values.get("r", ["8"])[0])
        alpha = float(values.get("alpha", [str(2 * r)])[0])
        dropout = float(values.get("dropout", ["0"])[0])
    except ValueError:
        raise HessError(f"--lora: r must be an integer and alpha, dropout numbers; got {text!r}") from None
    if r < 1:
        raise HessError(f"--lora: r must be at least 1, got {r}")
    if not 0 <= dropout < 1:
        raise HessError(f"--lora: dropout must be in [0, 1), got {dropout}")
    targets = tuple(t for t in values.get("targets", ["attn"]) if t)
    return LoraSpec(r, alpha, targets or ("attn",), dropout)


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.base = base
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, device=base.weight.device))
        # A random, B zero: training starts exactly at the base model (Hu et al., 2021).
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        base.weight.requires_grad_(False)
        if base.bias is not None:
            base.bias.requires_grad_(False)

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + (self.dropout(x) @ self.lora_A.t() @ self.lora_B.t()) * self.scaling

    @torch.no_grad()
    def merge(self) -> bool:
        """Fold the update into the base weight; False (and nothing done) if already merged."""
        if self.merged:
            return False
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True
        return True


def _matches(name: str, targets: tuple[str, ...]) -> bool:
    for target in targets:
        suffixes = TARGET_GROUPS.get(target, (target,))
        if any(name == s or name.endswith("." + s) for s in suffixes):
            return True
    return False


def apply_lora(model: nn.Module, spec: LoraSpec) -> list[str]:
    """Wrap the targeted linear layers and freeze every other parameter. Returns the wrapped names."""
    unknown = [
        t
        for t in spec.targets
        if t not in TARGET_GROUPS
        and not any(n.endswith(t) for n, m in model.named_modules() if isinstance(m, nn.Linear))
    ]
    if unknown:
        raise HessError(
            f"--lora: unknown target(s) {', '.join(unknown)}; use attn, mlp or module names like c_attn"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and _matches(n, spec.targets)]
    if not names:
        raise HessError(f"--lora: targets {', '.join(spec.targets)} match no linear layer of this model")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), spec.r, spec.alpha, spec.dropout))
    return names


def lora_modules(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors, keyed ``<module>.lora_A`` / ``<module>.lora_B``."""
    state = {}
    for name, module in lora_modules(model).items():
        state[f"{name}.lora_A"] = module.lora_A.detach().clone()
        state[f"{name}.lora_B"] = module.lora_B.detach().clone()
    return state


def load_adapter_weights(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    modules = lora_modules(model)
    expected = {f"{n}.lora_{x}" for n in modules for x in "AB"}
    missing, extra = sorted(expected - set(weights)), sorted(set(weights) - expected)
    if missing or extra:
        detail = f"missing {', '.join(missing[:4])}" if missing else f"unexpected {', '.join(extra[:4])}"
        raise HessError(f"{source}: adapter tensors do not fit this model ({detail})")
    with torch.no_grad():
        for name, module in modules.items():
            for part in ("A", "B"):
                tensor, target = weights[f"{name}.lora_{part}"], getattr(module, f"lora_{part}")
                if tensor.shape != target.shape:
                    raise HessError(
                        f"{source}: {name}.lora_{part} has shape {tuple(tensor.shape)}, "
                        f"the model expects {tuple(target.shape)}"
                    )
                target.copy_(tensor)


def merge_lora(model: nn.Module) -> int:
    """Merge every adapter in place and unwrap the layers; returns how many were merged."""
    merged = 0
    for name, module in lora_modules(model).items():
        merged += int(module.merge())
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, module.base)
    return merged


def save_adapter(
    path: str | Path,
    model: nn.Module,
    spec: LoraSpec,
    base: dict[str, Any],
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write the adapter file. ``base`` carries the base model's ``config`` dict and ``sha256``."""
    from hessgpt.checkpoint import _plain

    obj = {
        "format": ADAPTER_FORMAT,
        "version": ADAPTER_VERSION,
        "lora": spec.to_dict(),
        "modules": sorted(lora_modules(model)),
        "base": _plain(base),
        "meta": _plain(meta or {}),
        "weights": adapter_state_dict(model),
    }
    return atomic_torch_save(obj, path)


@dataclass
class Adapter:
    spec: LoraSpec
    modules: list[str]
    base: dict[str, Any]
    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    path: str


def load_adapter(path: str | Path) -> Adapter:
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != ADAPTER_FORMAT:
        raise HessError(f"{path}: not a HessGPT LoRA adapter file (a full checkpoint? pass it as --base)")
    if not isinstance(obj.get("version"), int) or obj["version"] > ADAPTER_VERSION:
        raise HessError(
            f"{path}: adapter format version {obj.get('version')!r} is newer than this hessgpt supports"
        )
    try:
        spec = LoraSpec.from_dict(obj["lora"])
        return Adapter(
            spec,
            list(obj["modules"]),
            dict(obj.get("base") or {}),
            dict(obj.get("meta") or {}),
            dict(obj["weights"]),
            str(path),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise HessError(f"{path}: malformed adapter file ({exc})") from None


def merge_adapter_into(
    loaded: Any, adapter: Adapter, adapter_sha: str, force: bool = False
) -> dict[str, Any]:
    """Merge ``adapter`` into a :class:`~hessgpt.loading.LoadedModel` in place; returns its new meta.

    Refuses an adapter already merged into this base (merging twice would add the update twice)
    and, unless ``force``, a base other than the one the adapter was trained on.
    """
    history = list(loaded.meta.get("lora_merged") or [])
    if any(entry.get("adapter_sha256") == adapter_sha for entry in history):
        raise HessError(
            f"{adapter.path}: this adapter is already merged into {loaded.path}; merging it again "
            "would apply the update twice"
        )
    base_config = adapter.base.get("config")
    if isinstance(base_config, dict):
        ours = loaded.config.to_dict()
        differing = sorted(
            k
            for k in ("arch", "vocab_size", "n_layer", "n_head", "n_embd", "n_kv_head", "intermediate_size")
            if base_config.get(k) != ours.get(k)
        )
        if differing:
            raise HessError(
                f"{adapter.path}: adapter was trained on a model of another shape "
                f"({', '.join(f'{k}: {base_config.get(k)} vs {ours.get(k)}' for k in differing)})"
            )
    base_sha = adapter.base.get("sha256")
    if base_sha and loaded.sha256 and base_sha != loaded.sha256 and not force:
        raise HessError(
            f"{adapter.path}: adapter was trained on base {base_sha[:12]}, not on {loaded.path} "
            f"({loaded.sha256[:12]}); pass --force to merge anyway"
        )
    apply_lora(loaded.model, adapter.spec)
    load_adapter_weights(loaded.model, adapter.weights, adapter.path)
    merge_lora(loaded.model)
    history.append(
        {
            "adapter": adapter.path,
            "adapter_sha256": adapter_sha,
            "base_sha256": loaded.sha256,
            **adapter.spec.to_dict(),
        }
    )
    return {**loaded.meta, "lora_merged": history}
