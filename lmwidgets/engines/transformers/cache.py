"""The user cache directory and content hashes of weight files.

Hashes identify exactly which weights produced a text (they go into every run record). Hashing a
large file takes a while, so results are remembered per (path, size, mtime) in the cache dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

_CHUNK = 8 * 1024 * 1024


def cache_dir() -> Path:
    """The lmwidgets cache directory: ``$LMWIDGETS_CACHE`` or the platform's user cache dir."""
    env = os.environ.get("LMWIDGETS_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        import platformdirs

        path = Path(platformdirs.user_cache_dir("lmwidgets"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _index_path() -> Path:
    return cache_dir() / "hashes.json"


def _load_index() -> dict[str, str]:
    try:
        return json.loads(_index_path().read_text())
    except (OSError, ValueError):
        return {}


def _store_index(index: dict[str, str]) -> None:
    target = _index_path()
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(index, handle)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def sha256_bytes(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, remembered across sessions per (path, size, mtime)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    index = _load_index()
    if key in index:
        return index[key]
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    index[key] = value
    _store_index(index)
    return value


def sha256_files(paths: list[Path]) -> str:
    """One hex sha256 over several files (each file's name and hash, in sorted order)."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(f"{path.name}:{sha256_file(path)}\n".encode())
    return digest.hexdigest()
