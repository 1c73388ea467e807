"""Run records: exactly what ran, saved with every output and readable back from notebooks."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from lmwidgets.errors import RecordError

#: The MIME type under which ``%%prompt`` outputs store their run records.
RECORD_MIME = "application/vnd.lmwidgets.run+json"
RECORD_SCHEMA = 1
#: The version of one run record's shape: 2 names the engine (``model.engine``) and holds the
#: prompt's media as ``prompt.media`` (each with its ``kind``); 1 held ``prompt.images``.
RUN_RECORD_SCHEMA = 2


def library_versions() -> dict[str, str | None]:
    """Versions of lmwidgets, torch, transformers, peft and Python (without importing them)."""
    return dict(_library_versions())


@functools.lru_cache(maxsize=1)
def _library_versions() -> dict[str, str | None]:
    # Read once per process: every result's record carries them, and the loaded modules
    # cannot change version under a running kernel.
    versions: dict[str, str | None] = {}
    for package in ("lmwidgets", "torch", "transformers", "peft", "tokenizers", "gguf"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    return versions


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def bundle_payload(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON stored under :data:`RECORD_MIME`."""
    return {"schema": RECORD_SCHEMA, "records": records}


def records(notebook: str | Path | dict) -> list[dict[str, Any]]:
    """Every run record saved in a notebook (a path or a loaded notebook dict), in cell order.

    Each record says which model (source, weights hash), adapter, strategy, exact prompt,
    generation settings (with the seed), library versions, device and dtype produced a text.
    """
    if isinstance(notebook, dict):
        data = notebook
    else:
        path = Path(notebook)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RecordError(f"No notebook at {str(path)!r}.") from None
        except (OSError, ValueError) as exc:
            raise RecordError(f"Cannot read {str(path)!r} as a notebook: {exc}") from exc
    found: list[dict[str, Any]] = []
    for cell in data.get("cells", []):
        for output in cell.get("outputs", []) or []:
            payload = (output.get("data") or {}).get(RECORD_MIME)
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            if isinstance(payload, dict):
                found.extend(r for r in payload.get("records", []) if isinstance(r, dict))
    return found
