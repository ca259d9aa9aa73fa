"""The numba cache folder follows every source the kernels compile from: a
constant changed in one module (inlined into callers in others, which
numba's own cache check does not see) must select a fresh folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import sim
from sim.kernel_cache import sources_digest

ROOT = Path(sim.__file__).resolve().parents[1]


def test_any_kernel_source_change_selects_a_fresh_cache(tmp_path):
    for package in ("sim", "models"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    folders = (tmp_path / "sim", tmp_path / "models")
    before = sources_digest(*folders)
    assert before == sources_digest(ROOT / "sim", ROOT / "models")
    # modules in subpackages count (a top-level glob would miss them)
    for module in ("sim/engine/bucket_bounds.py", "sim/engine/rng.py", "sim/kernel_cache.py",
                   "models/policy.py"):
        path = tmp_path / module
        text = path.read_text()
        path.write_text(text + "\n# edited\n")
        assert sources_digest(*folders) != before, module
        path.write_text(text)
    assert sources_digest(*folders) == before
    # a new module counts too
    (tmp_path / "sim" / "engine" / "new_kernels.py").write_text("X = 1\n")
    assert sources_digest(*folders) != before
    # a module moved to another subpackage counts too
    (tmp_path / "sim" / "engine" / "new_kernels.py").rename(tmp_path / "sim" / "risk" / "new_kernels.py")
    moved = sources_digest(*folders)
    assert moved != before


def test_a_cold_cache_is_noticed(tmp_path, monkeypatch):
    import numba

    from sim.kernel_cache import cache_is_cold

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path / "numba"))
    assert cache_is_cold()
    (tmp_path / "numba" / "sim").mkdir(parents=True)
    (tmp_path / "numba" / "sim" / "kernel.nbi").write_bytes(b"")
    assert not cache_is_cold()
