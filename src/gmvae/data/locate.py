"""Find a data set's files locally, or download them with checksum verification.

Search order: the ``data_dir`` option, ``$GMVAE_DATA_DIR``, the per-user cache
(``$XDG_CACHE_HOME/gmvae`` or ``~/.cache/gmvae``), then system data set folders
(Debian's ``dataset-*`` packages install under ``/usr/share/datasets``). Each
location holds one sub-folder per data set (``mnist/``, ``fashion-mnist/``, ``svhn/``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gmvae.errors import DataError

SYSTEM_DATA_DIRS = (Path("/usr/share/datasets"), Path("/usr/local/share/datasets"))
DOWNLOAD_TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
    """A file of a public data set: its standard name, checksum and mirrors.

    ``digest`` is ``"sha256:<hex>"`` or ``"md5:<hex>"`` (the checksum the publisher gives).
    """

    name: str
    digest: str
    urls: tuple[str, ...]

    @property
    def alternatives(self) -> tuple[str, ...]:
        """Accepted local names: IDX files may also sit uncompressed."""
        if self.name.endswith(".gz"):
            return (self.name, self.name[:-3])
        return (self.name,)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gmvae"


def search_roots(data_dir: str | os.PathLike | None) -> list[tuple[str, Path | None]]:
    """(label, folder) in search order; folder is None where the source is not set."""
    env = os.environ.get("GMVAE_DATA_DIR")
    roots: list[tuple[str, Path | None]] = [
        ("--data.data_dir", Path(data_dir).expanduser() if data_dir else None),
        ("$GMVAE_DATA_DIR", Path(env).expanduser() if env else None),
        ("user cache", cache_dir()),
    ]
    roots += [("system", d) for d in SYSTEM_DATA_DIRS]
    return roots


def locate_files(
    folder: str,
    files: Sequence[RemoteFile],
    *,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> dict[str, Path]:
    """Map each file's standard name to a local path, downloading what is missing.

    Raises one :class:`DataError` that lists the files needed and every place looked in.
    """
    roots = search_roots(data_dir)
    found: dict[str, Path] = {}
    for remote in files:
        for _, root in roots:
            if root is None:
                continue
            hit = next(
                (root / folder / n for n in remote.alternatives if (root / folder / n).is_file()),
                None,
            )
            if hit is not None:
                found[remote.name] = hit
                break
    missing = [f for f in files if f.name not in found]
    if not missing:
        return found

    failure = "download disabled (--data.download false)"
    if download:
        target = next(root for label, root in roots if root is not None and label != "system")
        try:
            for remote in missing:
                found[remote.name] = download_file(remote, target / folder)
            return found
        except DataError as exc:
            if "checksum mismatch" in str(exc):
                raise
            failure = f"download failed: {exc}"

    looked = "\n".join(
        f"  - {root / folder}  ({label})" if root is not None else f"  - {label}: not set"
        for label, root in roots
    )
    names = ", ".join(f.name for f in missing)
    raise DataError(
        f"{folder} data not found: need {names}\nLooked in:\n{looked}\n"
        f"and {failure}.\nPut the files in one of these folders, or pass --data.data_dir DIR "
        f"(a folder holding {folder}/)."
    )


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(remote: RemoteFile, folder: Path) -> Path:
    """Download from the first mirror that answers; verify the checksum; rename into place."""
    algorithm, _, expected = remote.digest.partition(":")
    folder.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in remote.urls:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
        tmp = Path(tmp_name)
        try:
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            ):
                shutil.copyfileobj(response, out)
            actual = file_digest(tmp, algorithm)
            if actual != expected:
                raise DataError(
                    f"{url}: checksum mismatch for {remote.name}: expected {algorithm} "
                    f"{expected}, got {actual}; the file was not kept"
                )
            final = folder / remote.name
            os.replace(tmp, final)
            return final
        except OSError as exc:
            errors.append(f"{url}: {exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DataError("; ".join(errors))
