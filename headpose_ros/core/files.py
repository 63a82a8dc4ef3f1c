"""Writing and checking cached files: a file is there whole or not at all, and its checksum says which."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes) -> None:
    """Write all of `data` to `path` or leave `path` untouched.

    A temporary file in the same folder is written, flushed to disk and
    renamed over `path`, so readers see the old file or the whole new one; a
    crash or a full disk leaves at worst a stray ``.<name>.*.tmp``. The file
    is made readable by everyone (mkstemp creates 0600; caches may be shared
    read-only). OSError propagates, with no temporary file left behind.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
