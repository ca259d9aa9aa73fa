"""riskpool simulation: Monte Carlo engine, operational twin, results and CLI."""

import hashlib
import os
from pathlib import Path


# Modules of this package whose functions numba compiles (models/policy.py too).
_JITTED = ("rng", "plan", "kernels", "waterfall", "engine", "segments")


def _use_a_cache_per_kernel_version() -> None:
    """numba's on-disk cache does not notice when a jitted function's callee in
    another file changes, so a caller could run stale inlined code. One cache
    folder per version of the jitted sources rules that out. A NUMBA_CACHE_DIR
    set by the user is respected."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    import numba

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for source in (*(here / f"{m}.py" for m in _JITTED), here.parent / "models" / "policy.py"):
        digest.update(source.read_bytes())
    numba.config.CACHE_DIR = str(here / "__pycache__" / f"numba-{digest.hexdigest()[:16]}")


_use_a_cache_per_kernel_version()

from sim.engine import run  # noqa: E402

__all__ = ["run"]
