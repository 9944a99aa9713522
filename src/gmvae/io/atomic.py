"""Atomic file writes: a reader never sees a half-written file, and a crash keeps the old one."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from gmvae.errors import DiskFullError

# A full disk and a full quota read the same to a user: no room to write.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _new_file_mode() -> int:
    """The mode ``open()`` would give a new file: 0o666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """Yield a binary file beside ``path``; on success fsync it and rename it over ``path``.

    If the block raises (or the process dies), ``path`` keeps its previous content:
    an exception removes the temporary file; a killed process leaves at most a
    ``.<name>.*.tmp`` file, which :func:`remove_stale_temporaries` clears. A full disk
    raises :class:`DiskFullError` naming ``path`` (the writer, e.g. torch.save, may have
    wrapped the OSError in an error of its own).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        full = disk_full_error(exc, path)
        if full is None:
            raise
        raise full from exc
    try:
        os.fchmod(fd, _new_file_mode())  # mkstemp makes 0600; a plain open() would give this
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        full = disk_full_error(exc, path)
        if full is not None:
            raise full from exc
        raise
    _fsync_dir(path.parent)


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc``, or an error it was raised from or during, is a full disk or quota."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_full_error(exc: BaseException, path: str | os.PathLike) -> DiskFullError | None:
    """A :class:`DiskFullError` naming ``path`` when ``exc`` comes from a full disk, else None."""
    if isinstance(exc, DiskFullError) or not is_disk_full(exc):
        return None
    kept = "its previous version is kept" if Path(path).exists() else "nothing was written"
    return DiskFullError(f"cannot write {path}: the disk is full (no space left); {kept}")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``."""
    with atomic_writer(path) as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files that killed writers of ``path`` left behind."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
