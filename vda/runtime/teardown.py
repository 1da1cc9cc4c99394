"""The end of a command's process: what is still alive is left to the operating system.

At exit the interpreter runs the cyclic garbage collector over every object still alive, repeatedly while it
clears the modules. With torch imported that pass alone costs about 0.4 s, and 0.5-0.7 s after an inference
run: a tenth of a short clip's whole command (docs/performance.md). :func:`skip_final_collection` freezes the
objects at exit (``gc.freeze``: the collector skips them), so the process ends without the pass. Nothing else
changes: atexit handlers run (logging's flush among them), modules are cleared and objects freed by reference
counting are finalized as before; only objects in reference cycles are not finalized, and the commands close
their outputs explicitly before they return.
"""

from __future__ import annotations

import atexit
import gc


def skip_final_collection() -> None:
    """Freeze every object at interpreter exit (call once, from a command's entry point)."""
    atexit.register(gc.freeze)


__all__ = ["skip_final_collection"]
