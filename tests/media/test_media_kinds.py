"""A new media kind is one class plus one registration: nothing else changes.

The ``note`` kind below (a text attachment) goes through strategies, the runner, records and
re-runs exactly as images do; engines that do not list it refuse it before anything runs.
"""

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import lmwidgets
from lmwidgets.media.base import KINDS, MediaInput, register_kind


@dataclass
class Note(MediaInput):
    kind: ClassVar[str] = "note"
    text: str
    name: str = "note"
    source: str = "value"
    bytes_sha256: str | None = None
    location: str | None = None

    @property
    def sha256(self) -> str:  # type: ignore[override]
        return hashlib.sha256(self.text.encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "source": self.source, "sha256": self.sha256}

    def widget_data(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "text": self.text[:80]}


def load_note(value: Any, name: str | None = None) -> Note:
    return value if isinstance(value, Note) else Note(str(value), name=name or "note")


@pytest.fixture
def note_kind():
    register_kind("note", load_note)
    yield
    del KINDS["note"]


def test_a_new_kind_runs_records_and_reruns(registry, note_kind):
    engine = lmwidgets.load_model(
        engine="scripted", media=("note",), replies={"[note]": "I read your note."}
    )
    note = Note("Buy milk.", name="todo")
    cmp = lmwidgets.prompt("What does it say?", media=[note], display=False)
    assert cmp.text == "I read your note."
    assert "[note]" in cmp[0].prompt
    (entry,) = cmp[0].record["prompt"]["media"]
    assert entry == {"kind": "note", "name": "todo", "source": "value", "sha256": note.sha256}
    assert cmp[0].media == [entry] and cmp[0].images == []
    report = lmwidgets.rerun(cmp[0].record, images={"todo": Note("Buy milk.", name="todo")})
    assert report.matched
    with pytest.raises(lmwidgets.RecordError, match="note 'todo' differs"):
        lmwidgets.rerun(cmp[0].record, images={"todo": Note("Buy bread.", name="todo")})
    assert engine.capabilities.media == frozenset({"note"})


def test_engines_that_do_not_take_the_kind_refuse_it(registry, note_kind, tmp_path):
    lmwidgets.load_model(engine="scripted", name="images-only", media=("image",))
    with pytest.raises(lmwidgets.MediaError, match="note inputs need a model"):
        lmwidgets.prompt("Read it", media=[Note("x")], display=False)
    with pytest.raises(lmwidgets.StrategyError, match="MediaInput items"):
        lmwidgets.prompt("Read it", media=["just text"], display=False)


def test_a_recorded_kind_nobody_registered_is_a_clear_record_error(registry, note_kind):
    lmwidgets.load_model(engine="scripted", media=("note",))
    record = lmwidgets.prompt("Read it", media=[Note("x")], display=False)[0].record
    del KINDS["note"]
    try:
        with pytest.raises(lmwidgets.RecordError, match="'note'"):
            lmwidgets.rerun(record, images={"note": Note("x")})
    finally:
        register_kind("note", load_note)
