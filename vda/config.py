"""Structured configs shared by ``run_infer.py`` and ``run_bench.py``: the one home of every default.

Each choice group (``encoder``, ``device``, ``precision``, ``attention``, ``backend``) is generated from its
registry into Hydra's ConfigStore (:func:`store_choice_groups`); a record with options (``attention=sdpa``:
``kernel``; ``backend=openvino``: ``device`` ...) is stored as its own dataclass, so ``attention=flash3`` or
``attention.kernel`` on ``math`` fails at composition, and a new record is a new choice with no yaml to write.
The defaults list of each command is generated too (:func:`store_defaults`). The entry points convert
the composed config once, with :func:`to_object`, into these dataclasses; the library only ever sees them.
The top-level schemas live next to their entry points: :mod:`vda.infer.config` and :mod:`vda.bench.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue

from vda.attention import ATTENTION, AttentionConfig
from vda.backends import BACKENDS, BackendConfig
from vda.errors import ConfigError
from vda.model import DEFAULT_ENCODER, ENCODERS
from vda.runtime.device import device_choices
from vda.runtime.precision import Precision


@dataclass
class EncoderConfig:
    name: str = DEFAULT_ENCODER


@dataclass
class DeviceConfig:
    # auto (cuda > mps > cpu), cpu, cuda, cuda:N, mps
    name: str = "auto"


@dataclass
class PrecisionConfig:
    # auto: fp16 on cuda, fp32 on cpu and mps
    name: Precision = Precision.auto


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
    # null: sqlite:///<directory the command was started from>/mlflow.db (or $MLFLOW_TRACKING_URI)
    tracking_uri: Optional[str] = None
    experiment: str = "vda"


@dataclass
class RunConfig:
    """What both commands choose: the network, where and how it runs, its weights, where runs are tracked."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    device: DeviceConfig = field(default_factory=DeviceConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    backend: BackendConfig = field(default_factory=BackendConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)


CHOICE_GROUPS = ("encoder", "device", "precision", "attention", "backend")


def store_defaults(cs: ConfigStore, name: str, schema: str, cfg: RunConfig, **more: str) -> None:
    """Store ``name``: the defaults list of a command, generated from its dataclass ``cfg`` (each choice group's
    default is the name its field holds by default) plus ``more`` groups; ``conf/<command>.yaml`` lists it."""
    choices = [{group: str(getattr(getattr(cfg, group).name, "value", getattr(cfg, group).name))} for group in CHOICE_GROUPS]
    cs.store(name=name, node={"defaults": [schema, *choices, *({g: v} for g, v in more.items()), "_self_"]})


def store_choice_groups(cs: ConfigStore) -> None:
    """One Hydra group option per registry record (``encoder=vitl``, ``attention=math`` ...)."""
    for record in ENCODERS.records():
        cs.store(group="encoder", name=record.name, node=EncoderConfig(name=record.name))
    for name in device_choices():
        cs.store(group="device", name=name, node=DeviceConfig(name=name))
    for precision in Precision:
        cs.store(group="precision", name=precision.value, node=PrecisionConfig(name=precision))
    for record in ATTENTION.records():  # each implementation's own options dataclass
        cs.store(group="attention", name=record.name, node=record.value.schema(name=record.name))
    for record in BACKENDS.records():  # each backend's own options dataclass
        cs.store(group="backend", name=record.name, node=record.value.schema(name=record.name))


def to_object(cfg: Any) -> Any:
    """The composed config as its dataclasses (done once, at the entry point)."""
    if not isinstance(cfg, DictConfig):
        return cfg
    try:
        return OmegaConf.to_object(cfg)
    except MissingMandatoryValue as exc:
        key = exc.full_key
        raise ConfigError(f"no value given for {key}; pass {key}=... on the command line") from None


def to_plain_dict(cfg: Any) -> dict:
    """Resolved config as plain Python values (enums as their names)."""
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.structured(cfg)
    return OmegaConf.to_container(node, resolve=True, enum_to_str=True)


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
    "BackendConfig",
    "DeviceConfig",
    "EncoderConfig",
    "MlflowConfig",
    "ModelConfig",
    "PrecisionConfig",
    "RunConfig",
    "flatten",
    "store_choice_groups",
    "store_defaults",
    "to_object",
    "to_plain_dict",
]
