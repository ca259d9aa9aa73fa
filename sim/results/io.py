"""Writing a run's results folder atomically: everything goes into a hidden
temporary folder beside the target, which is renamed into place only when
complete, so an interrupted or failed run leaves no half-written folder.

A temporary folder's name carries the writing process's id and host
(`.<target>.riskpool-<pid>-<host>.<random>.tmp`): one left by a killed
process of this host (SIGKILL, power loss) is removed by the next write into
the same parent; another host's are left alone.
Folders get the user's normal permissions (the umask), parents created for
a write that fails are removed again, and of two writers racing for one
target exactly one wins; the other gets "already exists"."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import xarray as xr


class OutputError(OSError):
    """The results folder cannot be written (exists already, or not writable)."""


_TEMP = re.compile(r"^\..*\.riskpool-(\d+)-([0-9a-f]{8})\.[^.]+\.tmp$")


def _host() -> str:
    """This machine (and process-id namespace) as 8 hex digits: a temporary folder of a writer on
    another host sharing the folder (NFS, a container's volume) is never taken for a dead one's."""
    namespace = os.stat("/proc/self/ns/pid").st_ino if os.path.exists("/proc/self/ns/pid") else 0
    return hashlib.sha256(f"{socket.gethostname()}:{namespace}".encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale_temporaries(parent: Path) -> None:
    """Remove the temporary folders and files of writers that no longer run."""
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            match = _TEMP.match(entry.name)
            if match and match.group(2) == _host() and not _alive(int(match.group(1))):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _make_parents(parent: Path) -> Path | None:
    """Create `parent` and its missing ancestors; returns the topmost one created (None if it existed)."""
    missing = [p for p in (parent, *parent.parents) if not p.exists()]
    parent.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def _remove_empty(top: Path | None, parent: Path) -> None:
    """Remove `parent` and its ancestors up to `top` where empty (folders this write created)."""
    if top is None:
        return
    for p in (parent, *parent.parents):
        with contextlib.suppress(OSError):
            p.rmdir()
        if p == top:
            return


def _temporary_name(target: Path) -> str:
    return f".{target.name}.riskpool-{os.getpid()}-{_host()}."


@contextlib.contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """Yield a temporary folder; on success rename it to `target`."""
    target = Path(target)
    if target.exists():
        raise OutputError(f"{target}: already exists; choose another --out folder")
    parent = target.parent
    try:
        created = _make_parents(parent)
        remove_stale_temporaries(parent)
        tmp = Path(tempfile.mkdtemp(prefix=_temporary_name(target), suffix=".tmp", dir=parent))
        os.chmod(tmp, 0o777 & ~_umask())
    except OSError as exc:
        raise OutputError(f"{target}: cannot create the results folder: {exc.strerror or exc}") from None
    try:
        yield tmp
        try:
            os.rename(tmp, target)  # onto an existing non-empty folder this fails: exactly one writer wins
        except OSError as exc:
            if target.exists():
                raise OutputError(f"{target}: already exists (written meanwhile by another run); "
                                  "choose another --out folder") from None
            raise OutputError(f"{target}: cannot write the results folder: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created, parent)
        raise


@contextlib.contextmanager
def atomic_file(target: Path) -> Iterator[Path]:
    """Yield a temporary file path beside `target`; on success it replaces `target`."""
    target = Path(target)
    parent = target.parent
    try:
        created = _make_parents(parent)
        remove_stale_temporaries(parent)
        fd, name = tempfile.mkstemp(prefix=_temporary_name(target), suffix=".tmp", dir=parent)
        os.close(fd)
        os.chmod(name, 0o666 & ~_umask())
    except OSError as exc:
        raise OutputError(f"{target}: cannot be written: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        _remove_empty(created, parent)
        raise


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_netcdf(ds: xr.Dataset, path: Path) -> None:
    """Write `ds` as netCDF4 (HDF5) to `path`."""
    # Built in memory, then written as plain bytes: on a full disk HDF5 fails with a RuntimeError and
    # its half-open file later crashes the interpreter; a plain write fails with OSError (ENOSPC).
    # In memory with a Dask client about, xarray would take a cluster-wide lock named after the
    # buffer, which the cluster does not know: the local scheduler is told here.
    with _local_dask():
        data = ds.to_netcdf(engine="h5netcdf")
    Path(path).write_bytes(data)


def _local_dask() -> contextlib.AbstractContextManager:
    try:
        import dask.config  # optional (riskpool[dask])
    except ImportError:
        return contextlib.nullcontext()
    return dask.config.set(scheduler="synchronous")


def read_netcdf(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()
