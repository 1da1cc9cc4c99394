"""Typed exceptions of the library.

Every error a user can cause derives from :class:`VDAError`; the entry points turn it into one line
on stderr and a non-zero exit (see :func:`vda.entry.one_line_errors`). The message says what went wrong,
where, and what to do about it.
"""


class VDAError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(VDAError, ValueError):
    """A configuration value is invalid or inconsistent."""


class DeviceUnavailableError(VDAError):
    """The requested device (or a dtype on it) cannot be used on this machine."""


class BackendUnavailableError(VDAError):
    """The requested attention implementation or runtime backend cannot run here."""


class CheckpointError(VDAError):
    """A checkpoint cannot be found, downloaded or loaded."""


class InputShapeError(VDAError, ValueError):
    """A tensor given to the network has a shape it does not accept."""


class NonFiniteOutputError(VDAError, FloatingPointError):
    """The network produced NaN or inf depth (typically fp16 overflow)."""


class VideoError(VDAError):
    """A video cannot be opened, decoded or written."""


class OutputError(VDAError):
    """An output location cannot be written."""


class DeviceMemoryError(VDAError, MemoryError):
    """The device ran out of memory even after the smaller-footprint retry."""


class DatasetError(VDAError):
    """An accuracy dataset (its index, a listed file, the predictions) is missing or malformed."""
