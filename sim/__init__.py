"""riskpool simulation: Monte Carlo engine, operational twin, results and CLI."""

import hashlib
import os
from pathlib import Path


def sources_digest(*folders: Path) -> str:
    """Hash of the name and content of every module in `folders`."""
    digest = hashlib.sha256()
    for folder in folders:
        for source in sorted(folder.glob("*.py")):
            digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _use_a_cache_per_kernel_version() -> None:
    """numba's on-disk cache does not notice when a jitted function's callee in
    another file changes (a constant or a function it inlines), so a caller
    could run stale code. One cache folder per version of the sources of `sim`
    and `models` (kernels compile functions of both; listing them by hand
    once missed one) rules that out. A NUMBA_CACHE_DIR set by the user is
    respected."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    import numba

    here = Path(__file__).resolve().parent
    numba.config.CACHE_DIR = str(here / "__pycache__" / f"numba-{sources_digest(here, here.parent / 'models')}")


_use_a_cache_per_kernel_version()

from sim.engine import run  # noqa: E402

__all__ = ["run"]
