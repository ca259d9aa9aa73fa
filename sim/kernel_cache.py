"""One numba cache folder per version of the kernels' sources.

numba's on-disk cache does not notice when a jitted function's callee in
another file changes (a constant or a function it inlines), so a caller
could run stale code. One cache folder per digest of every module of `sim`
and `models`, subpackages included (kernels compile functions of both;
listing them by hand once missed one), rules that out. A NUMBA_CACHE_DIR set
by the user is respected."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def sources_digest(*folders: Path) -> str:
    """Hash of the relative path and content of every module under `folders`."""
    digest = hashlib.sha256()
    for folder in folders:
        folder = Path(folder)
        for source in sorted(folder.rglob("*.py")):
            if "__pycache__" in source.parts:
                continue
            name = source.relative_to(folder).as_posix()
            digest.update(name.encode() + b"\0" + source.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cache_is_cold() -> bool:
    """Has no kernel of this version been compiled into the cache yet (the first run compiles)?"""
    import numba

    folder = Path(numba.config.CACHE_DIR or Path(__file__).resolve().parent / "__pycache__")
    return not folder.is_dir() or next(folder.rglob("*.nbi"), None) is None


def use_a_cache_per_kernel_version() -> None:
    """Point numba's cache at the folder of this version of the sources (before any kernel is compiled)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    import numba

    here = Path(__file__).resolve().parent
    numba.config.CACHE_DIR = str(here / "__pycache__"
                                 / f"numba-{sources_digest(here, here.parent / 'models')}")
