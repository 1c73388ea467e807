"""Structured answers: the shape an answer must have (a JSON schema, a regular expression, one
of a fixed set of labels, a Lark grammar), as data.

A :class:`Constraint` is what the user asked for, kept exactly as given (records hold the
schema or pattern as typed). Engines enforce it while decoding
(:mod:`lmwidgets.engines.grammar`); every column, free or enforced, is checked against it after
generation, which fills ``Result.valid`` and ``Result.parsed``. With chain-of-thought the model
reasons freely and only the text after :data:`ANSWER_MARKER` is the structured answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

#: The kinds of constraint and the option that gives each.
KINDS = {"json": "--json", "regex": "--regex", "one_of": "--one-of", "grammar": "--grammar"}
#: With ``cot``, the structured answer follows this marker (the cot instruction asks for it).
ANSWER_MARKER = "The answer is:"


@dataclass(frozen=True)
class Constraint:
    """One structured-answer constraint.

    ``source`` is the JSON schema (a dict), the pattern, the tuple of choices or the Lark
    grammar; ``model`` the pydantic class the schema came from (``parsed`` is then an instance of
    it). ``after`` (chain-of-thought) is the marker after which the constrained answer starts;
    the text before it is free."""

    kind: str
    source: Any
    model: Any = None
    after: str | None = None

    def with_marker(self, marker: str | None) -> Constraint:
        """This constraint applied only to the text after ``marker`` (None: the whole text)."""
        return Constraint(self.kind, self.source, self.model, marker)

    def describe(self) -> str:
        """A short human description: ``JSON schema (Person)``, ``regex \\d{4}``..."""
        if self.kind == "json":
            name = getattr(self.model, "__name__", None) or _title(self.source)
            return f"JSON schema ({name})" if name else "JSON schema"
        if self.kind == "regex":
            return f"regex {self.source}"
        if self.kind == "one_of":
            return "one of " + ", ".join(self.source)
        return "grammar"

    def record(self) -> dict[str, Any]:
        """What a run record keeps: the kind and the schema, pattern, choices or grammar exactly."""
        key = {"json": "schema", "regex": "pattern", "one_of": "choices", "grammar": "grammar"}
        record: dict[str, Any] = {"kind": self.kind, key[self.kind]: _plain(self.source)}
        if self.model is not None:
            record["model"] = f"{self.model.__module__}.{self.model.__qualname__}"
        if self.after:
            record["after"] = self.after
        return record

    def answer_text(self, text: str) -> str | None:
        """The part of ``text`` the constraint applies to: all of it (surrounding white space
        aside), or what follows the last marker (None when a marker was expected but is
        missing)."""
        if self.after:
            at = text.rfind(self.after)
            if at < 0:
                return None
            text = text[at + len(self.after) :]
        return text.strip()

    def parse(self, answer: str) -> Any:
        """``answer`` as Python data: a JSON value (a pydantic instance with a model class);
        the text itself for the other kinds. Raises ValueError when it does not parse."""
        if self.kind != "json":
            return answer
        value = json.loads(answer)
        if self.model is not None:
            return self.model.model_validate(value)
        return value


def _title(schema: Any) -> str | None:
    return schema.get("title") if isinstance(schema, dict) else None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def constraint_from_record(record: Any) -> Constraint | None:
    """The constraint a run record kept (None without one); a pydantic model is not re-imported
    (``parsed`` of a reloaded result is plain JSON)."""
    if not isinstance(record, dict) or record.get("kind") not in KINDS:
        return None
    kind = record["kind"]
    key = {"json": "schema", "regex": "pattern", "one_of": "choices", "grammar": "grammar"}[kind]
    source = record.get(key)
    if kind == "one_of" and isinstance(source, list):
        source = tuple(source)
    return Constraint(kind, source, None, record.get("after"))


def parsed_for_display(parsed: Any) -> Any:
    """``parsed`` as plain JSON data (a pydantic instance dumped), for records and views."""
    dump = getattr(parsed, "model_dump", None)
    return dump(mode="json") if callable(dump) else parsed
