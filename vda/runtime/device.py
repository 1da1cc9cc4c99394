"""Every fact vda needs about a device type, in one record per type (``cpu``, ``cuda``, ``mps``).

Callers ask :func:`facts` instead of branching on ``device.type``: synchronisation, the stopwatch of the
latency timer, the memory counters, the precision checks and the ``auto`` precision, the SDPA kernels on
offer, the attention split limits, host-to-device copies and the default benchmark sizes. A new device type
is one :class:`DeviceFacts` subclass registered in :data:`DEVICES`.

``auto`` picks the first available record in registration order: cuda > mps > cpu.
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from vda.errors import ConfigError, DeviceUnavailableError
from vda.registry import Registry

MIB = 1024.0 * 1024.0
# Largest attention score tensor one kernel call may build, in bytes. MPS cannot hold one array of 2**32
# bytes or more (and some matmuls above 2**32 elements go wrong there); elsewhere it bounds the memory of
# implementations that materialise the scores (math).
MAX_SCORE_BYTES = 1 << 30
# CUDA limits grid dimensions y and z to 65535; the fused kernels put the batch on one of those axes and
# the heads on another, so the batch alone must stay within it.
CUDA_GRID_LIMIT = 65535
# MPS autocast shipped in torch 2.5, bf16 on MPS and bicubic resampling on MPS in 2.6: the floor on MPS.
MPS_TORCH_FLOOR = (2, 6)
# MPS runs bf16 from macOS 14 (Sonoma) on.
MPS_BF16_MACOS = (14, 0)
# Fused attention kernels (flash, cuDNN; all of them in bf16) need Ampere, compute capability 8.0.
AMPERE = (8, 0)


def torch_version(version: str = torch.__version__) -> tuple[int, int]:
    major, minor = version.split("+")[0].split(".")[:2]
    return int(major), int(minor)


class Stopwatch:
    """Wall clock between :meth:`start` and :meth:`stop`, the device synchronised at both ends."""

    def __init__(self, device: torch.device) -> None:
        self.device = device

    def start(self) -> None:
        facts(self.device).synchronize(self.device)
        self._t0 = time.perf_counter()

    def stop(self) -> float:
        """Milliseconds since :meth:`start`."""
        facts(self.device).synchronize(self.device)
        return (time.perf_counter() - self._t0) * 1000.0


class CudaEventStopwatch(Stopwatch):
    """Device time of the queued work between two CUDA events recorded on the device's current stream."""

    def start(self) -> None:
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self._start.record(torch.cuda.current_stream(self.device))

    def mark(self) -> None:
        """Record the end of the region without waiting for it (read later with :meth:`elapsed`)."""
        self._end.record(torch.cuda.current_stream(self.device))

    def done(self) -> bool:
        """Whether the device has reached the end of the region."""
        return self._end.query()

    def elapsed(self) -> float:
        """Milliseconds of device time between start and :meth:`mark` (waits for the end event only)."""
        self._end.synchronize()
        return float(self._start.elapsed_time(self._end))

    def stop(self) -> float:
        self.mark()
        return self.elapsed()


@dataclass
class MemoryCounters:
    """Device memory counters around a region; host RSS is sampled separately by the tracker.

    ``sampled``: probes (MiB) the tracker polls in a thread; ``headline``: the detail key reported as the peak.
    """

    headline: str = "rss_peak_mib"
    sampled: dict[str, Callable[[], float]] = field(default_factory=dict)
    # Whether the headline counts memory allocated outside torch's allocator (another runtime's): host RSS does.
    sees_other_runtimes: bool = True

    def device_wide(self, device: torch.device) -> Optional[Callable[[], float]]:
        """A probe (MiB) of the memory in use on the whole device, whoever allocated it; None when there is none."""
        return None

    def reset(self, device: torch.device) -> None:
        """Start a new region (clear peak counters)."""

    def current(self, device: torch.device, peaks: dict[str, float]) -> float:
        """The headline figure at the start of the region (MiB)."""
        return peaks["rss"]

    def read(self, device: torch.device, peaks: dict[str, float]) -> dict[str, float]:
        """Device peaks of the region (MiB) from the counters and the sampled ``peaks``."""
        return {}


class CudaMemoryCounters(MemoryCounters):
    def __init__(self) -> None:
        super().__init__(headline="cuda_peak_allocated_mib", sees_other_runtimes=False)

    def device_wide(self, device: torch.device) -> Optional[Callable[[], float]]:
        def used() -> float:
            free, total = torch.cuda.mem_get_info(device)
            return (total - free) / MIB

        return used

    def reset(self, device: torch.device) -> None:
        torch.cuda.reset_peak_memory_stats(device)

    def current(self, device: torch.device, peaks: dict[str, float]) -> float:
        return torch.cuda.memory_allocated(device) / MIB

    def read(self, device: torch.device, peaks: dict[str, float]) -> dict[str, float]:
        return {
            "cuda_peak_allocated_mib": torch.cuda.max_memory_allocated(device) / MIB,
            "cuda_peak_reserved_mib": torch.cuda.max_memory_reserved(device) / MIB,
        }


class MpsMemoryCounters(MemoryCounters):
    """MPS has no peak counter: the allocated bytes are sampled, so spikes shorter than the interval are missed."""

    def __init__(self) -> None:
        super().__init__(
            headline="mps_peak_allocated_mib",
            sampled={
                "mps_allocated": lambda: torch.mps.current_allocated_memory() / MIB,
                "mps_driver": lambda: torch.mps.driver_allocated_memory() / MIB,
            },
            sees_other_runtimes=False,
        )

    def current(self, device: torch.device, peaks: dict[str, float]) -> float:
        return peaks["mps_allocated"]

    def read(self, device: torch.device, peaks: dict[str, float]) -> dict[str, float]:
        return {"mps_peak_allocated_mib": peaks["mps_allocated"], "mps_peak_driver_mib": peaks["mps_driver"]}


class DeviceFacts:
    """What vda needs to know about one device type. The defaults describe a plain host device; each
    device type overrides what differs."""

    auto_precision = "fp32"
    # SDPA kernels on offer: the values attention.kernel takes.
    attention_kernels: tuple[str, ...] = ("auto", "math")
    stopwatch: type[Stopwatch] = Stopwatch
    memory: type[MemoryCounters] = MemoryCounters
    # Host->device copies may be asynchronous (from pinned memory).
    async_copies = False
    # Largest batch a fused attention kernel accepts on one grid axis (None: no limit).
    attention_grid_limit: Optional[int] = None
    # SDPA may fall back to a kernel that materialises the scores (then split by MAX_SCORE_BYTES like math).
    sdpa_materialises_scores = False
    # SDPA kernels without a float32 path: a float32 call (the temporal blocks) runs efficient/math instead.
    sdpa_half_only_kernels: tuple[str, ...] = ()
    # Benchmark defaults: window (frames, height, width) and pipeline network input size.
    bench_window = (32, 518, 518)
    bench_input_size = 518
    # Stage times are read from the stopwatch's device events later (its mark/done/elapsed) instead of a host
    # synchronisation per stage, which would stop asynchronous copies from overlapping with compute.
    deferred_timing = False
    # Most model copies worth running on one device at once (None: no limit).
    max_workers: Optional[int] = None
    # How fp32 regions run, recorded with every benchmark job.
    fp32_math_label = "ieee"

    def device_count(self) -> int:
        """How many devices of this type the machine has (the valid indices are 0 .. count - 1)."""
        return 1

    def fp32_math(self) -> contextlib.AbstractContextManager:
        """Context in which float32 operations run in IEEE float32 (no reduced-precision shortcut)."""
        return contextlib.nullcontext()

    def unavailable(self) -> Optional[str]:
        """Why the device cannot be used on this machine; None when it can."""
        return None

    def synchronize(self, device: torch.device) -> None:
        """Wait for the queued work."""

    def describe(self, device: torch.device) -> str:
        return device.type

    def empty_cache(self) -> None:
        """Give the allocator's cached blocks back (after an out-of-memory error)."""

    def precision_problem(self, device: torch.device, precision: str) -> Optional[str]:
        """Why ``precision`` ("fp16", "bf16") cannot run on the device; None when it can."""
        return None

    def sdpa_kernel_problem(self, device: torch.device, kernel: str, precision: str) -> Optional[str]:
        """Why an offered SDPA kernel cannot run at ``precision``; None when it can."""
        return None

    def fused_attention_problem(self, device: torch.device, precision: str) -> Optional[str]:
        """Why fused attention kernels (SDPA's flash/efficient/cuDNN, xformers) cannot run at ``precision``."""
        return None

    def sdpa_auto_materialises(self, device: torch.device, dtype: torch.dtype) -> bool:
        """Whether SDPA's ``auto`` choice falls back to its math kernel (which builds the scores) for ``dtype``."""
        return self.sdpa_materialises_scores


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def cuda_capability(device: torch.device) -> tuple[int, int]:
    return torch.cuda.get_device_capability(device)


def _capability_text(device: torch.device) -> str:
    return ".".join(map(str, cuda_capability(device)))


class CudaFacts(DeviceFacts):
    auto_precision = "fp16"
    attention_kernels = ("auto", "flash", "efficient", "math", "cudnn")
    sdpa_half_only_kernels = ("flash", "cudnn")
    stopwatch = CudaEventStopwatch
    memory = CudaMemoryCounters
    async_copies = True
    attention_grid_limit = CUDA_GRID_LIMIT
    deferred_timing = True
    fp32_math_label = "ieee (tf32 off)"

    def device_count(self) -> int:
        return torch.cuda.device_count()

    @contextlib.contextmanager
    def fp32_math(self):
        """TF32 off for cuDNN convolutions (on by default from Ampere) and matmuls: fp32 means fp32."""
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved

    def unavailable(self) -> Optional[str]:
        if torch.cuda.is_available():
            return None
        return (
            f"device=cuda was asked for but torch.cuda.is_available() is False (torch {torch.__version__}); "
            "use device=cpu or device=auto"
        )

    def synchronize(self, device: torch.device) -> None:
        torch.cuda.synchronize(device)

    def describe(self, device: torch.device) -> str:
        return torch.cuda.get_device_name(device)

    def empty_cache(self) -> None:
        torch.cuda.empty_cache()

    def precision_problem(self, device: torch.device, precision: str) -> Optional[str]:
        # Not torch.cuda.is_bf16_supported(): it counts emulation as support and asks the current device.
        if precision == "bf16" and cuda_capability(device) < AMPERE:
            return (
                f"precision=bf16 needs compute capability 8.0+ on {device} (this GPU: {_capability_text(device)}); "
                "use precision=fp16 or precision=fp32"
            )
        return None

    def sdpa_kernel_problem(self, device: torch.device, kernel: str, precision: str) -> Optional[str]:
        if kernel not in ("flash", "cudnn"):
            return None
        if precision not in ("fp16", "bf16"):
            return f"attention.kernel={kernel} runs in fp16/bf16 only, not {precision}; use precision=fp16 or attention.kernel=auto"
        if cuda_capability(device) < AMPERE:
            return (
                f"attention.kernel={kernel} needs compute capability 8.0+ (this GPU: {_capability_text(device)}); "
                "use attention.kernel=efficient or auto"
            )
        return None

    def fused_attention_problem(self, device: torch.device, precision: str) -> Optional[str]:
        if precision == "bf16" and cuda_capability(device) < AMPERE:
            return (
                f"fused attention kernels have no bf16 before compute capability 8.0 (this GPU: "
                f"{_capability_text(device)}); use precision=fp16, or attention=math for bf16"
            )
        return None

    def sdpa_auto_materialises(self, device: torch.device, dtype: torch.dtype) -> bool:
        return dtype == torch.bfloat16 and cuda_capability(device) < AMPERE


class MpsFacts(DeviceFacts):
    memory = MpsMemoryCounters
    sdpa_materialises_scores = True
    # One GPU shared by every process: more model copies add memory, not speed.
    max_workers = 1

    def unavailable(self, version: str = torch.__version__) -> Optional[str]:
        if not mps_available():
            return (
                "device=mps was asked for but the MPS backend is not available on this machine "
                "(it needs Apple silicon and macOS 12.3+); use device=cpu or device=auto"
            )
        if torch_version(version) < MPS_TORCH_FLOOR:
            floor = ".".join(map(str, MPS_TORCH_FLOOR))
            return f"device=mps needs torch>={floor} (autocast and bicubic resampling on MPS), found {version}; pip install -U torch"
        return None

    def synchronize(self, device: torch.device) -> None:
        torch.mps.synchronize()

    def describe(self, device: torch.device) -> str:
        return "Apple MPS"

    def empty_cache(self) -> None:
        torch.mps.empty_cache()

    def precision_problem(self, device: torch.device, precision: str) -> Optional[str]:
        if not torch.amp.is_autocast_available("mps"):
            return f"precision={precision} needs autocast on MPS, which torch {torch.__version__} lacks; use precision=fp32"
        if precision == "bf16" and not torch.backends.mps.is_macos_or_newer(*MPS_BF16_MACOS):
            # Below macOS 14 autocast turns itself off (the run would be fp32 under a bf16 label) or ops raise.
            return "precision=bf16 on MPS needs macOS 14 or newer; use precision=fp16 or precision=fp32"
        return None


class CpuFacts(DeviceFacts):
    attention_kernels = ("auto", "flash", "math")
    bench_window = (8, 196, 196)
    bench_input_size = 196

    def describe(self, device: torch.device) -> str:
        return platform.processor() or platform.machine() or "cpu"


DEVICES: Registry[DeviceFacts] = Registry("device")
DEVICES.register("cuda", CudaFacts(), help="NVIDIA GPU")
DEVICES.register("mps", MpsFacts(), help="Apple silicon GPU")
DEVICES.register("cpu", CpuFacts(), help="host processor")

AUTO = "auto"


def device_choices() -> list[str]:
    return [AUTO, *DEVICES.names()]


def facts(device: torch.device | str) -> DeviceFacts:
    """The record of ``device``'s type (``cuda:1`` -> cuda)."""
    return DEVICES.get(torch.device(device).type)


def resolve_device(name: str | torch.device = AUTO) -> torch.device:
    """The torch device for ``name`` (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``), or a one-line error."""
    name = str(name)
    kind = name.split(":")[0]
    if kind == AUTO:
        for record in DEVICES.records():
            if record.value.unavailable() is None:
                return torch.device(record.name)
        raise DeviceUnavailableError("no device is usable")  # cpu always is
    if kind not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; choose one of {', '.join(device_choices())}")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"device={name} is not a device name; use {kind} or {kind}:N") from None
    record = DEVICES.get(kind)
    reason = record.unavailable()
    if reason is not None:
        raise DeviceUnavailableError(reason)
    count = record.device_count()
    if device.index is not None and device.index >= count:
        raise DeviceUnavailableError(
            f"device={name} does not exist: this machine has {count} {kind} device{'s' if count != 1 else ''} "
            f"(indices 0..{count - 1}); use {kind}:0 or {kind}"
        )
    return device


def synchronize(device: torch.device) -> None:
    """Wait for all queued work on ``device`` (no-op on cpu)."""
    facts(device).synchronize(torch.device(device))


def device_description(device: torch.device) -> str:
    """Human-readable name of the hardware behind ``device``."""
    return facts(device).describe(torch.device(device))


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a host tensor to ``device``: asynchronously from pinned memory where the device allows it.

    The pinned staging tensor stays valid until the copy completes (PyTorch's host allocator records the
    copy's stream). Elsewhere (MPS above all) the copy is synchronous: an asynchronous copy from a temporary
    host array can read it after it was freed.
    """
    if facts(device).async_copies:
        return batch.pin_memory().to(device, non_blocking=True)
    return batch.to(device)


__all__ = [
    "DEVICES",
    "DeviceFacts",
    "MAX_SCORE_BYTES",
    "MemoryCounters",
    "Stopwatch",
    "device_choices",
    "device_description",
    "facts",
    "mps_available",
    "resolve_device",
    "synchronize",
    "to_device",
]
