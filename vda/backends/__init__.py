"""Runtime backends behind one choice: torch (eager), compile, onnxruntime, openvino.

    runner = vda.backends.create("openvino", build_model("vits", checkpoint=...), device="CPU")
    WindowedDepth(runner, input_size=518)   # the engine takes a runner like a model
"""

from vda.backends.registry import BACKENDS, Backend, backend_status, create, get_backend, register_backend
from vda.backends.runners import GraphRunner, Runner

__all__ = [
    "BACKENDS",
    "Backend",
    "GraphRunner",
    "Runner",
    "backend_status",
    "create",
    "get_backend",
    "register_backend",
]
