"""Checkpoints: official files from the Hugging Face hub, local paths, or seeded random weights."""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import torch

from vda.errors import CheckpointError
from vda.model.video_depth_anything import DEFAULT_ENCODER, ENCODERS, VideoDepthAnything

log = logging.getLogger(__name__)

_SIZE = {"vits": "Small", "vitb": "Base", "vitl": "Large"}
_LICENCE = {"vits": "Apache-2.0", "vitb": "CC-BY-NC-4.0", "vitl": "CC-BY-NC-4.0"}


@dataclass(frozen=True)
class OfficialCheckpoint:
    repo_id: str
    filename: str
    licence: str

    @property
    def url(self) -> str:
        return f"https://huggingface.co/{self.repo_id}/resolve/main/{self.filename}"


def official_checkpoint(encoder: str, metric: bool = False) -> OfficialCheckpoint:
    ENCODERS.get(encoder)
    if metric:
        return OfficialCheckpoint(
            f"depth-anything/Metric-Video-Depth-Anything-{_SIZE[encoder]}",
            f"metric_video_depth_anything_{encoder}.pth",
            _LICENCE[encoder],
        )
    return OfficialCheckpoint(
        f"depth-anything/Video-Depth-Anything-{_SIZE[encoder]}",
        f"video_depth_anything_{encoder}.pth",
        _LICENCE[encoder],
    )


HUB_HOST = "huggingface.co"


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """Whether the hub answers a TCP connection; checked first so that offline fails at once, not after retries."""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def download_official(encoder: str, metric: bool = False, cache_dir: str | os.PathLike | None = None) -> Path:
    """The official checkpoint from the hub cache, else downloaded; a one-line error when that cannot be done."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    ckpt = official_checkpoint(encoder, metric)
    log.info("checkpoint %s/%s is licensed %s", ckpt.repo_id, ckpt.filename, ckpt.licence)
    fetch = f"fetch {ckpt.url} and pass model.checkpoint=/path/to/{ckpt.filename}"
    try:
        return Path(hf_hub_download(ckpt.repo_id, ckpt.filename, cache_dir=cache_dir, local_files_only=True))
    except LocalEntryNotFoundError:
        pass
    if constants.HF_HUB_OFFLINE or not hub_reachable():
        raise CheckpointError(
            f"model.checkpoint=auto: {ckpt.filename} is not in the Hugging Face cache and the hub cannot be "
            f"reached (offline); {fetch}, or pass model.checkpoint=random for meaningless test weights"
        )
    try:
        path = hf_hub_download(ckpt.repo_id, ckpt.filename, cache_dir=cache_dir)
    except Exception as exc:  # HTTP errors, gated or moved repos, interrupted transfers
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"could not download {ckpt.filename} from {ckpt.repo_id} ({reason}); {fetch}") from exc
    return Path(path)


def _init_tensor(name: str, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """A non-zero, well-scaled random value for parameter ``name``."""
    noise = torch.randn(shape, generator=generator)
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "gamma":  # layer scale: small and positive, as after training
        return 0.1 + 0.05 * noise.abs()
    if len(shape) == 1:
        is_norm = ".norm" in name or "norms." in name or "ff_norm" in name or name.endswith("norm.weight")
        if leaf == "weight" and is_norm:
            return 1.0 + 0.1 * noise
        return 0.02 * noise + 0.01  # biases: small but non-zero
    if leaf in {"cls_token", "pos_embed", "mask_token"}:
        return 0.02 * noise
    return noise * (1.0 / math.sqrt(math.prod(shape[1:])))


def random_state_dict(encoder: str = DEFAULT_ENCODER, metric: bool = False, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seeded weights in the official layout: every parameter non-zero (temporal ``proj_out`` included).

    Depth from these weights is meaningless; they exist for tests and speed/equivalence benchmarks.
    """
    model = VideoDepthAnything(encoder, metric=metric)
    template = model.state_dict()
    buffers = {name for name, _ in model.named_buffers()}
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for name, value in template.items():
        if name in buffers:  # the sinusoidal tables are fixed, not learned
            state[name] = value.clone()
            continue
        state[name] = _init_tensor(name, value.shape, generator)
    # keep the final ReLU mostly open so depth maps are non-trivial
    state["head.scratch.output_conv2.2.bias"] = torch.full_like(state["head.scratch.output_conv2.2.bias"], 0.5)
    return state


def save_checkpoint(state_dict: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """``torch.save`` a flat state dict, atomically (temporary name, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state_dict, tmp)
    tmp.replace(path)
    return path


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file {path} does not exist; pass model.checkpoint=PATH, auto or random")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [""])[0]
        raise CheckpointError(f"cannot read checkpoint {path}: {type(exc).__name__}: {reason}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return state


def _guess_encoder(state: dict[str, torch.Tensor]) -> str | None:
    pos = state.get("pretrained.pos_embed")
    if pos is None:
        return None
    depth = len({k.split(".")[2] for k in state if k.startswith("pretrained.blocks.")})
    for record in ENCODERS.records():
        if pos.shape[-1] == record.value.embed_dim and depth == record.value.depth:
            return record.name
    return None


def load_weights(model: VideoDepthAnything, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a one-line explanation of a mismatch."""
    guessed = _guess_encoder(state)
    if guessed is not None and guessed != model.encoder_name:
        raise CheckpointError(
            f"checkpoint {source} is for encoder={guessed} but the model is encoder={model.encoder_name}; "
            f"pass encoder={guessed} or another checkpoint"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        expected = set(model.state_dict())
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        detail = f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        if not missing and not unexpected:
            detail = str(exc).splitlines()[-1].strip()
        raise CheckpointError(f"checkpoint {source} does not fit a Video Depth Anything {model.encoder_name}: {detail}") from exc


def load_checkpoint(model: VideoDepthAnything, checkpoint: str | os.PathLike, seed: int = 0) -> str:
    """Load ``checkpoint`` ("auto", "random" or a path) into ``model``; returns where the weights came from."""
    spec = str(checkpoint)
    if spec == "random":
        log.warning(
            "model.checkpoint=random: seeded random weights (seed %d) — depth values are MEANINGLESS; "
            "use them for speed and equivalence checks only",
            seed,
        )
        load_weights(model, random_state_dict(model.encoder_name, model.metric, seed), "random")
        return "random"
    path = download_official(model.encoder_name, model.metric) if spec == "auto" else Path(spec).expanduser()
    load_weights(model, read_state_dict(path), str(path))
    return str(path)
