"""The registry of axis kinds: column axes that are one module plus a registration.

The built-in axes (prompt, system, field, strategy, model and adapter, temperature, top-p,
trial) are part of :mod:`lmwidgets.prompting.axes`. Every other kind of axis (probes,
structured answers, your own) is an :class:`AxisKind` in :data:`KINDS`: its name and place
among the axes, the API keywords and ``%%prompt`` options it reads, how it builds its axis for
a run (an :class:`AxisRun`: its values and ids, and what each value does to a column), what
the column's record keeps, how a re-run restores it, its per-cell badge in the live view and the
static copy, and its error class. The strategies, runner, records, replay, layout, static copy
and live view look kinds up here and never name one, so a new kind is one module that calls
:func:`register_kind` (as media kinds are, :mod:`lmwidgets.media.base`); see
``tests/prompting/test_toy_axis_kind.py`` for one registered in a test alone.

Data only: this module imports nothing from the layers that use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lmwidgets.errors import InvalidArgumentError, LmWidgetsError

#: Modules that register lmwidgets' own axis kinds (imported on first use of the registry).
#: Their order is the order of their marks in a cell (structured flags before probe verdicts).
BUILTIN_MODULES: list[str] = [
    "lmwidgets.prompting.structured_axis",
    "lmwidgets.prompting.probe_axis",
]


@dataclass(frozen=True)
class AxisContext:
    """What a kind may look at when it builds its axis for a run (before any column exists)."""

    #: The kind's own keywords as given (every one of :attr:`AxisKind.keywords`, None if not).
    options: Mapping[str, Any]
    #: The notebook's variables (``variables=``).
    namespace: Mapping[str, Any]
    #: The run's models (engines) and strategies' names.
    engines: Sequence[Any]
    strategies: Sequence[str]
    #: The axes built so far (:class:`lmwidgets.prompting.axes.Axis`), the prompt's wordings
    #: (``(name, text)``), its system prompt and media.
    axes: Sequence[Any]
    wordings: Sequence[tuple[str, str]]
    system: str | None
    media: Sequence[Any]


class AxisRun:
    """One kind's part of one run: its :attr:`axis` (None: the run has no such axis, but the
    kind still shapes its columns, e.g. a constraint checked on every column) and what each of
    its values does to a column. Subclasses override the hooks they need; each gets the
    column's value on this axis (None where the column has none)."""

    #: The axis (an :class:`lmwidgets.prompting.axes.Axis`); its values are ``(id, value)``.
    axis: Any = None

    def fill(self, value: Any, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        """The template's field values for this column (before they are filled in)."""
        return fields

    def turns(
        self, value: Any, system: str | None, question: str
    ) -> tuple[str | None, str, list[dict[str, Any]]]:
        """The column's system prompt, question and chat turns before it (after the fields
        are filled in)."""
        return system, question, []

    def media(self, value: Any, media: list[Any]) -> list[Any]:
        """The column's media (the prompt's, then a dataset item's own)."""
        return media

    def variant(self, value: Any, strategy: str, media: list[Any]) -> dict[str, Any]:
        """Fields of the :class:`~lmwidgets.core.variant.Variant` this value sets: what the
        engine needs (``constraint``, ``enforced``) and ``recorded`` entries (what the column's
        record keeps under the kind's keys, e.g. ``{"probe": {...}}``)."""
        return {}

    def finishers(self) -> list[Callable[[Any], None]]:
        """What runs on the finished comparison (notes, verdicts)."""
        return []


@dataclass(frozen=True)
class AxisKind:
    """One axis kind (see the module docstring). Only ``name``, ``after`` and ``build`` are
    required; every hook left None does nothing, and any hook may be a lazy
    ``"module:function"`` path (see :meth:`hook`)."""

    #: The axis' name: its coordinate in ``Variant.coords`` and records' ``axes``, and what
    #: ``--columns`` names.
    name: str
    #: The built-in axis it follows in the product, the labels and the layout (``top_p``).
    after: str
    #: ``build(context) -> AxisRun | None``: the kind's part of a run (None: not asked for).
    #: Bad input raises :attr:`error` before anything runs.
    build: Callable[[AxisContext], AxisRun | None]
    #: API keywords of :func:`lmwidgets.prompt` (fields of the strategies' options) it reads.
    keywords: tuple[str, ...] = ()
    #: The keywords that ask for the axis (default: all of them; see :attr:`needs_text`).
    asks: tuple[str, ...] | None = None
    #: How the option is named in messages (``--probe``; default ``--<name>``).
    flag: str = ""
    #: Whether the kind acts on generated text (given choices, which generate nothing, then
    #: refuse a run that asks for it).
    needs_text: bool = True
    #: The plural name of the axis in a matrix's shape line (default ``<name> values``).
    title: str = ""
    #: Whether the columns along the axis answer one question, so that how many of their
    #: answers agree means something (False for probes: each column is another attack; the
    #: live view and the static copy then leave the agreement summary and marks out).
    agreement: bool = True
    #: The value id of the column the kind leaves as written (a probe's ``none``): with
    #: ``agreement`` False, every other column asks a question of its own and shows no answer
    #: chip (:func:`~lmwidgets.core.layout.asks_its_own_question`).
    baseline: str = ""
    #: ``label(value_id) -> str``: a coordinate as labels and headers write it (default: the id).
    label: Callable[[str], str] | str | None = None
    #: The :class:`~lmwidgets.errors.LmWidgetsError` subclass of the kind's bad input.
    error: type[LmWidgetsError] = InvalidArgumentError
    #: ``add_options(parser)``: the kind's ``%%prompt`` options (argparse).
    add_options: Callable[[Any], None] | str | None = None
    #: ``%%prompt`` options whose values are kept exactly as typed (not expanded as IPython
    #: expands ``{name}`` in magic lines): patterns such as ``--regex``.
    raw_options: tuple[str, ...] = ()
    #: ``read_options(args, namespace) -> {keyword: value}``: parsed ``%%prompt`` flags as
    #: keywords (default: ``getattr(args, keyword)`` for each keyword).
    read_options: Callable[[Any, Mapping[str, Any]], dict[str, Any]] | str | None = None
    #: ``check(variant, text, answer, extras) -> (answer, extras, result_fields)``: a
    #: generated column's answer, record ``output`` extras and :class:`~lmwidgets.core.results.
    #: Result` fields after generation (a structured answer's verdict, ``valid``, ``parsed``).
    check: Callable[..., tuple[str | None, dict[str, Any], dict[str, Any]]] | str | None = None
    #: ``restore(record) -> {key: value}``: a re-run's ``Variant.recorded`` entries.
    restore: Callable[[Mapping[str, Any]], dict[str, Any]] | str | None = None
    #: ``restore_media(record, read) -> media | None``: a re-run's media, where the kind
    #: changed them (``read(record)`` reads a record's media; None: the recorded ones).
    restore_media: Callable[[Mapping[str, Any], Callable[..., list[Any]]], list[Any] | None] | (
        str | None
    ) = None
    #: ``rerun_finisher(records) -> finisher | None``: what a re-run of these records runs on
    #: its comparison (probes judge again).
    rerun_finisher: Callable[[Sequence[Mapping[str, Any]]], Callable[[Any], None] | None] | (
        str | None
    ) = None
    #: ``table(result) -> {column: value} | None``: the kind's ``to_pandas()`` columns (None:
    #: the result has nothing of the kind; the columns appear when any result has them).
    table: Callable[[Any], dict[str, Any] | None] | str | None = None
    #: The live view: ``cell_value(result)`` is what the view passes on for a finished cell,
    #: ``cell(value) -> dict | None`` its bounded form, kept as the cell's ``cell_key``
    #: (read by the kind's own JS; default key: the name).
    cell_value: Callable[[Any], Any] | str | None = None
    cell: Callable[[Any], dict[str, Any] | None] | str | None = None
    cell_key: str = ""
    #: ``badge(result) -> {"text", "title", "state"} | None``: a small per-cell mark, shown by
    #: the live view's generic badge and the static copy's chip (no JS of the kind's own).
    badge: Callable[[Any], dict[str, Any] | None] | str | None = None
    #: The static copy: ``static_head(result)`` HTML beside the answer chip,
    #: ``static_body(result)`` HTML after the text, ``static_line(result)`` a plain line of
    #: the Markdown copy ('' for none; all escaped by the kind).
    static_head: Callable[[Any], str] | str | None = None
    static_body: Callable[[Any], str] | str | None = None
    static_line: Callable[[Any], str] | str | None = None

    def hook(self, name: str) -> Callable[..., Any] | None:
        """The hook ``name`` (None: not given). A hook may be a ``"module:function"`` path,
        imported when first called: a kind's module names functions of the layers above it
        (the runner's check, the static copy's HTML) without importing them."""
        value = getattr(self, name)
        if isinstance(value, str):
            module, _, attr = value.partition(":")
            value = getattr(importlib.import_module(module), attr)
        return value

    @property
    def option(self) -> str:
        """The option's name in messages."""
        return self.flag or f"--{self.name}"

    @property
    def key(self) -> str:
        """The live view cell's key of the kind's own data."""
        return self.cell_key or self.name

    def asked(self, options: Mapping[str, Any]) -> bool:
        """Whether ``options`` ask for this axis."""
        return any(options.get(name) is not None for name in self.asks or self.keywords)

    def options_of(self, args: Any, namespace: Mapping[str, Any]) -> dict[str, Any]:
        """The kind's keywords from parsed ``%%prompt`` flags."""
        read_options = self.hook("read_options")
        if read_options is not None:
            return read_options(args, namespace)
        return {name: getattr(args, name, None) for name in self.keywords}


#: Axis kinds by name.
KINDS: dict[str, AxisKind] = {}
_loaded = False


def register_kind(kind: AxisKind) -> AxisKind:
    """Make an axis kind known (replacing one of the same name). Returns it."""
    if not isinstance(kind, AxisKind):
        raise TypeError("register_kind takes an AxisKind")
    KINDS[kind.name] = kind
    return kind


def _load_builtins() -> None:
    """Import the built-in kinds' modules (each registers its ``KIND``), and put them first in
    :data:`BUILTIN_MODULES` order, whatever was imported or registered before."""
    global _loaded
    if not _loaded:
        _loaded = True
        builtins = [importlib.import_module(module).KIND for module in BUILTIN_MODULES]
        others = [kind for kind in KINDS.values() if kind not in builtins]
        KINDS.clear()
        KINDS.update((kind.name, kind) for kind in [*builtins, *others])


def all_kinds() -> list[AxisKind]:
    """Every registered axis kind (lmwidgets' own first), in registration order."""
    _load_builtins()
    return list(KINDS.values())


def get_kind(name: str) -> AxisKind | None:
    """The registered kind ``name`` (None: a built-in axis or unknown)."""
    _load_builtins()
    return KINDS.get(name)


def keywords() -> set[str]:
    """Every registered kind's API keywords."""
    return {name for kind in all_kinds() for name in kind.keywords}


def with_kinds(builtin: Sequence[str]) -> tuple[str, ...]:
    """``builtin`` axis names with each registered kind placed after its :attr:`~AxisKind.
    after` (kinds after the same axis in registration order; a kind whose ``after`` is not in
    ``builtin`` goes last)."""
    names = list(builtin)
    for kind in all_kinds():
        if kind.name in names:
            continue
        if kind.after not in names:
            names.append(kind.name)
            continue
        at = names.index(kind.after) + 1
        while at < len(names) and names[at] in KINDS and KINDS[names[at]].after == kind.after:
            at += 1
        names.insert(at, kind.name)
    return tuple(names)


def badges(result: Any) -> list[dict[str, str]]:
    """The result's generic badges (``kind``, ``text``, ``title``, ``state``), kind by kind."""
    found = []
    for kind in all_kinds():
        badge = kind.hook("badge")
        mark = badge(result) if badge is not None else None
        if mark:
            found.append(
                {
                    "kind": kind.name,
                    "text": str(mark.get("text", "")),
                    "title": str(mark.get("title", "")),
                    "state": str(mark.get("state", "")),
                }
            )
    return found
