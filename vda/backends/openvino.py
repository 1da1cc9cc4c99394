"""Backend ``openvino``: OpenVINO compiled models over the IR of the exported graphs (its graph format too)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from vda.backends.base import BackendConfig, check_graph_model, missing_packages, register_backend
from vda.backends.export import GRAPH_FORMATS, GraphFiles, GraphFormat, OnnxSource, cached_graphs
from vda.backends.runners import GraphRunner, to_numpy
from vda.errors import BackendUnavailableError, ConfigError
from vda.model.dinov2 import PATCH_SIZE
from vda.model.video_depth_anything import Features, VideoDepthAnything
from vda.runtime.precision import Precision

OPENVINO_DEVICES = ("CPU", "GPU", "AUTO")
# OpenVINO's own cache of compiled models, in the graph entry's folder (removed with it): compiling the IR anew
# took 0.9 s at input 252, loading the compiled blob 0.4 s. OpenVINO keys each blob by the model, the device
# and the properties, so one folder serves every configuration.
COMPILED = "compiled"
OPENVINO_PRECISION_HINTS = {Precision.fp32: "f32", Precision.bf16: "bf16", Precision.fp16: "f16"}


@dataclass
class OpenVinoConfig(BackendConfig):
    name: str = "openvino"
    # OpenVINO device: CPU, GPU or AUTO.
    device: str = "CPU"


def convert_openvino(onnx: GraphFiles, folder: Path) -> None:
    """ONNX graphs -> OpenVINO IR (``encoder.xml/.bin``, ``head.xml/.bin``), weights kept in float32."""
    import openvino as ov

    for source, name in ((onnx.encoder, "encoder"), (onnx.head, "head")):
        ov.save_model(ov.convert_model(str(source)), str(folder / f"{name}.xml"), compress_to_fp16=False)


def _write_ir(model: VideoDepthAnything, input_hw: tuple[int, int], folder: Path, onnx: OnnxSource) -> None:
    convert_openvino(onnx(), folder)


GRAPH_FORMATS.register(
    "openvino",
    GraphFormat(("encoder.xml", "head.xml"), ("torch", "onnx", "onnxscript", "openvino"), _write_ir),
    help="OpenVINO IR, converted from the ONNX graphs",
)


class OpenVinoRunner(GraphRunner):
    """OpenVINO compiled models over the IR of the exported graphs; precision via the inference precision hint."""

    backend = "openvino"
    foreign_memory = True
    releases_network = True

    def __init__(self, model: VideoDepthAnything, device: str = OpenVinoConfig.device) -> None:
        super().__init__(model)
        self.ov_device = device
        self.hint = OPENVINO_PRECISION_HINTS[model.precision]

    @property
    def attention_name(self) -> str:
        return "math"  # the exported formulation

    def compile_config(self) -> dict:
        """The compile properties: the precision hint; on CPU also torch's thread count (a dataset worker's
        share; OpenVINO would take every core) and no thread pinning (pinned threads of several processes, or
        of OpenVINO beside the decode and write threads, queue on the same cores)."""
        config = {"INFERENCE_PRECISION_HINT": self.hint}
        if self.ov_device == "CPU":
            config |= {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": torch.get_num_threads(),
                       "ENABLE_CPU_PINNING": False}
        return config

    def build(self, patch_hw: tuple[int, int]) -> tuple:
        """One infer request per graph (encoder, head): it holds its activation buffers between windows."""
        import openvino as ov

        files = cached_graphs(self.source(), (patch_hw[0] * PATCH_SIZE, patch_hw[1] * PATCH_SIZE), "openvino")
        core = ov.Core()
        config = self.compile_config() | {"CACHE_DIR": str(files.folder / COMPILED)}
        return tuple(self.checked(core.compile_model(str(path), self.ov_device, config)).create_infer_request()
                     for path in (files.encoder, files.head))

    def checked(self, compiled):
        """``compiled``, refused when OpenVINO chose another inference precision than the hint (hardware without
        bf16/f16 runs f32, or bf16 for f16): the run would be labelled with a precision that did not run."""
        used = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        if used != self.hint:
            names = {hint: p.value for p, hint in OPENVINO_PRECISION_HINTS.items()}
            runs = f"precision={names[used]}" if used in names else f"{used} only"
            raise BackendUnavailableError(
                f"openvino on {self.ov_device} runs {used}, not {self.hint}, for precision={self.precision.value} "
                f"on this hardware; use {runs}"
            )
        return compiled

    def run_encoder(self, request, frames: torch.Tensor) -> Features:
        """Inputs read in place; the outputs are views of the request's buffers (copied out by ``encode``)."""
        outputs = request.infer(to_numpy(frames), share_inputs=True, share_outputs=True)
        return tuple(torch.from_numpy(np.asarray(outputs[i])) for i in range(len(outputs)))

    def run_head(self, request, features: Features) -> torch.Tensor:
        outputs = request.infer([to_numpy(f) for f in features], share_inputs=True, share_outputs=True)
        return torch.from_numpy(np.asarray(outputs[0])).to(self.device, copy=True)  # the buffer is reused


def _available(device: torch.device) -> Optional[str]:
    return missing_packages("openvino", "openvino", ("openvino", "onnx", "onnxscript"))


def _make(model: VideoDepthAnything, options: OpenVinoConfig) -> OpenVinoRunner:
    import openvino as ov

    check_graph_model("openvino", model)
    if options.device not in OPENVINO_DEVICES:
        raise ConfigError(f"unknown openvino device {options.device!r}; choose one of {', '.join(OPENVINO_DEVICES)}")
    present = ov.Core().available_devices
    if options.device != "AUTO" and not any(d.split(".")[0] == options.device for d in present):
        raise BackendUnavailableError(
            f"openvino device {options.device} is not present here (found: {', '.join(present)}); use CPU or AUTO"
        )
    return OpenVinoRunner(model, options.device)


register_backend(
    "openvino",
    _make,
    _available,
    OpenVinoConfig,
    help="OpenVINO on the exported graphs; precision fp32/bf16/fp16 -> inference precision hint f32/bf16/f16",
    whole_windows=True,
    foreign_memory=OpenVinoRunner.foreign_memory,
)

__all__ = ["OPENVINO_DEVICES", "OpenVinoConfig", "OpenVinoRunner", "convert_openvino"]
