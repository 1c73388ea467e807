"""The response cache: identical requests are answered from disk, so re-running a notebook costs
nothing.

Each column is kept under its key (:mod:`lmwidgets.run.cache_keys`: a sha256 over everything
that determines its output). Greedy and seeded columns are cached; a column that samples without
a seed, a stopped or failed column, and a model or adapter that cannot be pinned never are.

Where: ``$LMWIDGETS_CACHE/responses/`` (the directory lmwidgets keeps its caches in), else the
platform's per-user cache directory (``~/.cache/lmwidgets/responses`` on Linux). The store is one
SQLite database (Python's own :mod:`sqlite3`: no dependency, no pickles, and SQLite's locking
makes it safe for several kernels at once; its write-ahead log lets them read while one writes).
Its size is bounded (:data:`DEFAULT_LIMIT_BYTES`, 1 GB of stored answers, configurable with
``%config LmMagics.cache_size_mb``): the least recently used entries go first. A store that
cannot be read is moved aside (``*.corrupt-<time>``) and a new one started, with a one-line note;
a store that cannot be used (locked for long, a read-only disk) only costs the cache, never the
run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmwidgets.core.variant import Variant
from lmwidgets.engines.base import RowOutput
from lmwidgets.run.cache_keys import (
    CachedColumn,
    column_key,
    decode_column,
    encode_column,
    storable,
)

#: The default bound on stored answers, in bytes (1 GB).
DEFAULT_LIMIT_BYTES = 1_000_000_000

#: The database file (its name carries the format: another format is another file).
DATABASE = "responses-v1.sqlite3"
#: Marks a database as lmwidgets' response cache (SQLite's ``user_version``).
_USER_VERSION = 0x4C4D5731  # "LMW1"
#: Seconds a kernel waits for another one's write before giving up on the cache for a call.
BUSY_TIMEOUT = 10.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value BLOB NOT NULL, "
    "size INTEGER NOT NULL, used REAL NOT NULL, created REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS entries_used ON entries (used)",
)


@dataclass
class CacheSettings:
    """Process-wide defaults: whether runs use the cache when not told (``cache=None``) and its
    size bound. ``%config LmMagics.cache`` and ``LmMagics.cache_size_mb`` set them."""

    enabled: bool = True
    limit_bytes: int = DEFAULT_LIMIT_BYTES


SETTINGS = CacheSettings()


def cache_location() -> Path:
    """The directory of the response cache (not created here)."""
    env = os.environ.get("LMWIDGETS_CACHE")
    if env:
        return Path(env).expanduser() / "responses"
    import platformdirs

    return Path(platformdirs.user_cache_dir("lmwidgets")) / "responses"


@dataclass(frozen=True)
class CacheStats:
    """What ``%lm cache`` says: where the cache is, what it holds and its bound."""

    location: Path
    entries: int
    bytes: int
    file_bytes: int
    limit_bytes: int


class CacheUnavailable(Exception):
    """The cache could not be used for this call (the run goes on without it)."""


class _KeptOpen:
    """Connections kept open between runs, one per database file (a few at most): opening and
    closing one per run would cost disk flushes each time (SQLite writes its log back when the
    last connection closes). Used under :attr:`lock`; closed when the process exits."""

    LIMIT = 4

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._open: dict[Path, tuple[sqlite3.Connection, int]] = {}

    def get(self, path: Path) -> sqlite3.Connection | None:
        """The open connection to ``path``, unless the file was replaced or removed since."""
        kept = self._open.get(path)
        if kept is None:
            return None
        try:
            same = path.stat().st_ino == kept[1]
        except OSError:
            same = False
        if not same:
            self.drop(path)
            return None
        return kept[0]

    def put(self, path: Path, db: sqlite3.Connection) -> None:
        while len(self._open) >= self.LIMIT:
            self.drop(next(iter(self._open)))
        self._open[path] = (db, path.stat().st_ino)

    def drop(self, path: Path) -> None:
        kept = self._open.pop(path, None)
        if kept is not None:
            kept[0].close()

    def close_all(self) -> None:
        with self.lock:
            for path in list(self._open):
                self.drop(path)


_KEPT = _KeptOpen()
atexit.register(_KEPT.close_all)


def close_connections() -> None:
    """Close the connections runs keep open (the next run opens the cache afresh, as a new
    kernel does)."""
    _KEPT.close_all()


class ResponseCache:
    """A connection to the response cache (see the module docstring); close it after use.

    ``keep_open`` (what runs use) keeps the connection for the next run in this process.
    Every method either works or raises :class:`CacheUnavailable` with a one-line reason; a
    corrupt database is set aside first (its note is in :attr:`notes`).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        limit_bytes: int | None = None,
        keep_open: bool = False,
    ) -> None:
        self.directory = Path(directory) if directory is not None else cache_location()
        self.path = self.directory / DATABASE
        self.limit_bytes = SETTINGS.limit_bytes if limit_bytes is None else int(limit_bytes)
        self.keep_open = keep_open
        self.notes: list[str] = []
        self._db: sqlite3.Connection | None = None

    # -- connection -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None and self.keep_open:
            self._db = _KEPT.get(self.path)
        if self._db is None:
            try:
                self._db = self._open()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise CacheUnavailable(_reason(exc)) from None
                self._set_aside(exc)
                try:
                    self._db = self._open()
                except sqlite3.Error as again:
                    raise CacheUnavailable(_reason(again)) from None
            except OSError as exc:
                raise CacheUnavailable(_reason(exc)) from None
            if self.keep_open:
                _KEPT.put(self.path, self._db)
        return self._db

    def _open(self) -> sqlite3.Connection:
        self.directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT,
            isolation_level=None,
            check_same_thread=not self.keep_open,  # a kept one is used under _KEPT.lock
        )
        try:
            # With the write-ahead log, NORMAL still never corrupts the file; a power cut may
            # only lose the last answers kept. Commits then cost no disk flush.
            db.execute("PRAGMA synchronous=NORMAL")
            # One statement, one snapshot: another kernel may be creating the tables now.
            version, tables = db.execute(
                "SELECT (SELECT user_version FROM pragma_user_version), "
                "(SELECT count(*) FROM sqlite_master)"
            ).fetchone()
            if version != _USER_VERSION and tables:
                raise sqlite3.DatabaseError("not lmwidgets' response cache")
            if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                # Readers go on while another kernel writes; where the file system cannot
                # (a network disk) or another kernel holds it now, SQLite's default journal is
                # just as safe.
                with contextlib.suppress(sqlite3.OperationalError):
                    db.execute("PRAGMA journal_mode=WAL")
            if version != _USER_VERSION:
                with _immediate(db):
                    for statement in _SCHEMA:
                        db.execute(statement)
                    db.execute(f"PRAGMA user_version={_USER_VERSION}")
        except BaseException:
            db.close()
            raise
        return db

    def _set_aside(self, error: BaseException) -> None:
        """Move an unreadable database (and its journal files) aside, with a note."""
        self._db = None
        if self.keep_open:
            _KEPT.drop(self.path)
        else:
            self.close()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        try:
            os.replace(self.path, target)
            for suffix in ("-wal", "-shm", "-journal"):
                side = self.path.with_name(self.path.name + suffix)
                if side.exists():
                    os.replace(side, target.with_name(target.name + suffix))
        except OSError as exc:
            raise CacheUnavailable(
                f"{_reason(error)}; it could not be moved aside: {exc}"
            ) from None
        self.notes.append(
            f"The response cache {self.path} could not be read ({_reason(error)}); it was set "
            f"aside as {target.name} and a new one started."
        )

    def _run(self, operation: Callable[..., Any], *args: Any) -> Any:
        """``operation(db, *args)``, with a corrupt database set aside and tried once more."""
        with _KEPT.lock if self.keep_open else contextlib.nullcontext():
            try:
                return operation(self._connection(), *args)
            except sqlite3.OperationalError as exc:  # locked, read-only, disk full: not corrupt
                raise CacheUnavailable(_reason(exc)) from None
            except sqlite3.DatabaseError as exc:
                self._set_aside(exc)
            try:
                return operation(self._connection(), *args)
            except sqlite3.Error as exc:
                raise CacheUnavailable(_reason(exc)) from None

    def close(self) -> None:
        """Close the connection (a kept one stays open for the next run)."""
        if self._db is not None:
            db, self._db = self._db, None
            if not self.keep_open:
                db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- entries ----------------------------------------------------------------------------

    def get_many(self, keys: Sequence[str]) -> dict[str, CachedColumn]:
        """The cached columns of ``keys`` that are there (each marked as just used). An entry
        that cannot be read back is dropped (and missed)."""
        if not keys:
            return {}
        return self._run(self._get_many, list(dict.fromkeys(keys)))

    def _get_many(self, db: sqlite3.Connection, keys: list[str]) -> dict[str, CachedColumn]:
        found: dict[str, CachedColumn] = {}
        broken: list[str] = []
        for start in range(0, len(keys), 500):  # SQLite's bound on parameters
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, value in db.execute(
                f"SELECT key, value FROM entries WHERE key IN ({marks})", chunk
            ):
                try:
                    found[key] = decode_column(zlib.decompress(value))
                except (zlib.error, ValueError, KeyError, TypeError, IndexError):
                    broken.append(key)
        if found or broken:
            with _immediate(db):
                now = time.time()
                db.executemany("UPDATE entries SET used=? WHERE key=?", [(now, k) for k in found])
                db.executemany("DELETE FROM entries WHERE key=?", [(k,) for k in broken])
        return found

    def put_many(self, columns: Iterable[tuple[str, CachedColumn]]) -> int:
        """Store columns under their keys, then evict the least recently used entries beyond
        the bound; returns how many were stored (one larger than the bound alone is not)."""
        rows = []
        now = time.time()
        for key, column in columns:
            value = zlib.compress(encode_column(column))
            size = len(value) + len(key)
            if size <= self.limit_bytes:
                rows.append((key, value, size, now, now))
        if rows:
            self._run(self._put_many, rows)
        return len(rows)

    def _put_many(self, db: sqlite3.Connection, rows: list[tuple]) -> None:
        with _immediate(db):
            db.executemany(
                "INSERT OR REPLACE INTO entries (key, value, size, used, created) "
                "VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            total = db.execute("SELECT coalesce(sum(size), 0) FROM entries").fetchone()[0]
            if total > self.limit_bytes:
                # Keep the most recently used entries that fit; drop the rest.
                db.execute(
                    "DELETE FROM entries WHERE key IN (SELECT key FROM (SELECT key, sum(size) "
                    "OVER (ORDER BY used DESC, key) AS running FROM entries) WHERE running > ?)",
                    (self.limit_bytes,),
                )

    def stats(self) -> CacheStats:
        """Where the cache is, its entries and their bytes, the file's size and the bound."""
        entries, size = self._run(
            lambda db: db.execute("SELECT count(*), coalesce(sum(size), 0) FROM entries").fetchone()
        )
        return CacheStats(self.directory, entries, size, self._file_bytes(), self.limit_bytes)

    def _file_bytes(self) -> int:
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += self.path.with_name(self.path.name + suffix).stat().st_size
        return total

    def clear(self) -> CacheStats:
        """Remove every entry (and give the disk space back); returns what there was."""
        before = self.stats()

        def clear(db: sqlite3.Connection) -> None:
            with _immediate(db):
                db.execute("DELETE FROM entries")

        self._run(clear)
        # Giving the space back needs a moment without other writers: best effort.
        with contextlib.suppress(CacheUnavailable):
            self._run(lambda db: db.execute("VACUUM"))
        return before


@contextlib.contextmanager
def _immediate(db: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``): another kernel's write waits
    for the busy timeout instead of failing half-way; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # the error that ended it is the one to report
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class RunCache:
    """One run's use of the cache: its columns are looked up before anything generates and
    the whole ones stored after; any trouble with the cache becomes one note in the run's
    notes and the run goes on without it."""

    def __init__(
        self,
        variants: Sequence[Variant],
        *,
        enabled: bool,
        ignore_eos: bool,
        notes: list[str],
        directory: Path | None = None,
    ) -> None:
        self.keys = [column_key(v, ignore_eos=ignore_eos) if enabled else None for v in variants]
        self.notes = notes
        self.hits: dict[int, CachedColumn] = {}
        self._cache = ResponseCache(directory, keep_open=True) if any(self.keys) else None

    def lookup(self) -> dict[int, CachedColumn]:
        """The variants (by index) whose columns are in the cache."""
        if self._cache is None:
            return {}
        keys = [k for k in self.keys if k is not None]
        found = self._use(lambda cache: cache.get_many(keys)) or {}
        self.hits = {i: found[k] for i, k in enumerate(self.keys) if k is not None and k in found}
        return self.hits

    def store(
        self,
        variants: Sequence[Variant],
        outputs: Sequence[Sequence[RowOutput]],
        seeds: dict[int, int | None],
        run: str,
        created: str,
    ) -> None:
        """Keep every column that was generated (not read from the cache) and is whole."""
        if self._cache is None:
            return
        columns = [
            (key, CachedColumn(list(outputs[i]), seeds.get(i), run, created))
            for i, key in enumerate(self.keys)
            if key is not None and i not in self.hits and storable(variants[i], outputs[i])
        ]
        if columns:
            self._use(lambda cache: cache.put_many(columns))

    def _use(self, operation: Callable[[ResponseCache], Any]) -> Any:
        cache = self._cache
        if cache is None:
            return None
        try:
            return operation(cache)
        except CacheUnavailable as exc:
            self._note(f"The response cache could not be used: {exc}.")
            self.close()
            self._cache = None
            return None
        finally:
            for note in cache.notes:
                self._note(note)
            cache.notes.clear()

    def _note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def close(self) -> None:
        """Close the connection (with finally: a run that fails still closes it)."""
        if self._cache is not None:
            self._cache.close()


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else type(error).__name__
