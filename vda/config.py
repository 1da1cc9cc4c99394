"""Structured configs shared by ``run_infer.py`` and ``run_bench.py``.

Each Hydra group (``encoder``, ``device``, ``precision``, ``attention``) fills one of these dataclasses,
so a bad value (``precision.name=fp8``) fails when the config is composed, before any work.
The top-level schemas live next to their entry points: :mod:`vda.pipeline.config` and
:mod:`vda.bench.config`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from vda.runtime.precision import Precision


class EncoderName(str, enum.Enum):
    vits = "vits"
    vitb = "vitb"
    vitl = "vitl"


class DeviceName(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


class AttentionName(str, enum.Enum):
    sdpa = "sdpa"
    xformers = "xformers"
    math = "math"


class SdpaKernel(str, enum.Enum):
    auto = "auto"
    flash = "flash"
    efficient = "efficient"
    math = "math"
    cudnn = "cudnn"


@dataclass
class EncoderConfig:
    name: EncoderName = EncoderName.vits


@dataclass
class DeviceConfig:
    name: DeviceName = DeviceName.auto


@dataclass
class PrecisionConfig:
    name: Precision = Precision.auto


@dataclass
class AttentionConfig:
    name: AttentionName = AttentionName.sdpa
    # Only read by the sdpa backend: which fused kernel torch may use.
    sdpa_kernel: SdpaKernel = SdpaKernel.auto


@dataclass
class ModelConfig:
    # A path to a .pth file, "auto" (download the official file) or "random" (seeded weights).
    checkpoint: str = "auto"
    metric: bool = False
    # Seed of checkpoint=random.
    seed: int = 0


@dataclass
class MlflowConfig:
    enabled: bool = True
    # null: sqlite:///<directory the command was started from>/mlflow.db
    tracking_uri: Optional[str] = None
    experiment: str = "vda"


def to_plain_dict(cfg: Any) -> dict:
    """Resolved config as plain Python values (enums as their names)."""
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True, enum_to_str=True)


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (for MLflow params)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


__all__ = [
    "AttentionConfig",
    "AttentionName",
    "DeviceConfig",
    "DeviceName",
    "EncoderConfig",
    "EncoderName",
    "MlflowConfig",
    "ModelConfig",
    "PrecisionConfig",
    "SdpaKernel",
    "flatten",
    "to_plain_dict",
]
