"""Earlier runs: every ``%%prompt`` run of the session, found again by cell, and after a kernel
restart from the records the saved notebook keeps.

A run is kept with the cell it ran in: JupyterLab, Notebook 7 and VS Code send each cell's id
with its execution, and :func:`watch_cells` reads it. Where no cell id is sent (a console, a
plain IPython shell, nbclient), "the previous run of this cell" is the session's latest run.
The session keeps the latest :data:`HISTORY_LIMIT` runs (their Comparisons, text and records);
older ones are dropped, and the saved notebook still has what was saved.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmwidgets.core.results import Comparison
from lmwidgets.core.safe_text import escape_html, shorten
from lmwidgets.errors import NoEarlierRunError
from lmwidgets.run.records import RECORD_MIME

#: Most runs the session keeps (the oldest is dropped first).
HISTORY_LIMIT = 100

__all__ = ["HISTORY", "History", "HistoryEntry", "NoEarlierRunError", "history", "saved_runs"]


@dataclass
class HistoryEntry:
    """One earlier run: where and when it ran, what varied, and its comparison."""

    number: int
    cell: str | None
    time: str
    title: str
    comparison: Comparison
    saved: bool = False

    @property
    def varied(self) -> str:
        """What varied between its columns (``'strategy, temperature'``; ``''``: one column)."""
        from lmwidgets.core.layout import coordinates, varying

        return ", ".join(varying([coordinates(r) for r in self.comparison.results]))

    @property
    def summary(self) -> str:
        """One line: the columns and their answers (or accuracy)."""
        results = self.comparison.results
        if self.comparison.scores:
            return "accuracy " + ", ".join(
                f"{label} {value:.0%}" for label, value in self.comparison.scores.items()
            )
        # An ellipsis marks a cut answer: "'... biological pro'" read as the model's own words.
        answers = [f"{r.variant}: {shorten(r.answer or r.text, 40)!r}" for r in results[:4]]
        more = f" (+{len(results) - 4} more)" if len(results) > 4 else ""
        return "; ".join(answers) + more


class History:
    """The session's runs, newest last; index it to get a run's :class:`Comparison`."""

    def __init__(self, limit: int = HISTORY_LIMIT) -> None:
        self._entries: deque[HistoryEntry] = deque(maxlen=limit)
        self._count = 0
        #: The id of the notebook cell running now (None outside a notebook front end).
        self.cell: str | None = None

    def add(self, comparison: Comparison, cell: str | None = None) -> HistoryEntry:
        """Keep ``comparison`` as the latest run of ``cell`` (default: the cell running now)."""
        self._count += 1
        entry = HistoryEntry(
            number=self._count,
            cell=cell if cell is not None else self.cell,
            time=_dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            title=comparison.title,
            comparison=comparison,
        )
        self._entries.append(entry)
        return entry

    def entries(self) -> list[HistoryEntry]:
        return list(self._entries)

    def previous(self, cell: str | None = None) -> Comparison | None:
        """The latest run of ``cell`` (default: the cell running now; without cell ids, the
        session's latest run), else the one the saved notebook keeps for that cell."""
        cell = cell if cell is not None else self.cell
        for entry in reversed(self._entries):
            if cell is None or entry.cell == cell:
                return entry.comparison
        if cell is not None:
            for entry in saved_runs(notebook_path()):
                if entry.cell == cell:
                    return entry.comparison
        return None

    def clear(self) -> None:
        self._entries.clear()


HISTORY = History()


def notebook_path() -> Path | None:
    """The notebook this kernel runs for: Jupyter Server names it in ``JPY_SESSION_NAME``."""
    name = os.environ.get("JPY_SESSION_NAME")
    if not name:
        return None
    path = Path(name)
    return path if path.suffix == ".ipynb" and path.is_file() else None


def saved_runs(path: str | os.PathLike[str] | None) -> list[HistoryEntry]:
    """The runs a saved notebook keeps: one entry per run (records grouped by run id), with
    the id of the cell each is in. A notebook that cannot be read has none."""
    if path is None:
        return []
    try:
        cells = json.loads(Path(path).read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError, AttributeError):
        return []
    entries: list[HistoryEntry] = []
    for cell in cells if isinstance(cells, list) else []:
        for records in _runs_in(cell):
            comparison = Comparison.from_records(records, title=_title_of(cell))
            entries.append(
                HistoryEntry(
                    number=len(entries) + 1,
                    cell=cell.get("id") if isinstance(cell.get("id"), str) else None,
                    time=str(records[0].get("created", "")),
                    title=comparison.title,
                    comparison=comparison,
                    saved=True,
                )
            )
    return entries


def _runs_in(cell: Any) -> Iterator[list[dict[str, Any]]]:
    """The records of each run a saved cell's outputs hold."""
    if not isinstance(cell, dict):
        return
    for output in cell.get("outputs") or []:
        payload = (output.get("data") or {}).get(RECORD_MIME) if isinstance(output, dict) else None
        records = payload.get("records") if isinstance(payload, dict) else None
        if not isinstance(records, list) or not records:
            continue
        runs: dict[str, list[dict[str, Any]]] = {}
        for record in records:  # an earlier run shown beside (--vs) is that run's, not this
            if isinstance(record, dict) and record.get("shown_as") != "previous":
                runs.setdefault(str(record.get("run", "")), []).append(record)
        yield from runs.values()


def _title_of(cell: dict[str, Any]) -> str:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else str(source)
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("%")]
    return lines[0][:120] if lines else ""


class HistoryView:
    """What :func:`lmwidgets.history` returns: the runs as a table; ``view[i]`` (or
    ``view[-1]``) is run ``i``'s :class:`Comparison`."""

    def __init__(self, entries: list[HistoryEntry]) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Comparison:
        if not self.entries:
            raise IndexError("No earlier runs: run a %%prompt cell first.")
        return self.entries[index].comparison

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "run": i,
                "cell": e.cell,
                "time": e.time,
                "title": e.title,
                "varied": e.varied,
                "columns": len(e.comparison.results),
                "status": e.comparison.status,
                "summary": e.summary,
                "saved": e.saved,
            }
            for i, e in enumerate(self.entries)
        ]

    def to_pandas(self) -> Any:
        import pandas as pd

        return pd.DataFrame(self.rows())

    def __repr__(self) -> str:
        if not self.entries:
            return "No earlier runs."
        return "\n".join(
            f"[{r['run']}] {r['time']} {r['title']!r} ({r['columns']} columns"
            f"{', varied: ' + r['varied'] if r['varied'] else ''}) {r['summary']}"
            for r in self.rows()
        )

    def _repr_html_(self) -> str:
        if not self.entries:
            return "<p>No earlier runs.</p>"
        keys = ("run", "time", "title", "varied", "columns", "summary")
        names = ("run", "time", "prompt", "varied", "columns", "summary")
        head = "".join(
            f"<th{_CELL_STYLE[key]}>{name}</th>" for key, name in zip(keys, names, strict=True)
        )
        body = "".join(
            "<tr>"
            + "".join(f"<td{_CELL_STYLE[key]}>{escape_html(str(r[key]))}</td>" for key in keys)
            + "</tr>"
            for r in self.rows()
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


#: JupyterLab right-aligns table cells: text reads from the left, numbers stay right, and a
#: time never wraps.
_CELL_STYLE = {
    "run": "",
    "time": ' style="text-align: left; white-space: nowrap"',
    "title": ' style="text-align: left"',
    "varied": ' style="text-align: left"',
    "columns": "",
    "summary": ' style="text-align: left"',
}


def history(notebook: str | os.PathLike[str] | None = None) -> HistoryView:
    """Earlier runs: this session's (newest last), then those the saved notebook keeps that
    the session does not (after a kernel restart: all of them). ``notebook`` is the saved
    notebook to read (default: the one this kernel runs for, when Jupyter names it).
    ``history()[i]`` is run ``i``'s :class:`Comparison`; ``.to_pandas()`` lists them."""
    session = HISTORY.entries()
    seen = {
        r.record.get("run")
        for e in session
        for r in e.comparison.results
        if r.record.get("shown_as") != "previous"
    }
    path = notebook if notebook is not None else notebook_path()
    saved = [e for e in saved_runs(path) if e.comparison.results[0].record.get("run") not in seen]
    return HistoryView([*saved, *session])


def watch_cells(shell: Any) -> None:
    """Follow which notebook cell runs (IPython's ``pre_run_cell`` event carries its id)."""
    shell.events.register("pre_run_cell", _cell_started)


def unwatch_cells(shell: Any) -> None:
    with contextlib.suppress(ValueError):  # never registered
        shell.events.unregister("pre_run_cell", _cell_started)


def _cell_started(info: Any) -> None:
    cell = getattr(info, "cell_id", None)
    HISTORY.cell = cell if isinstance(cell, str) and cell else None
