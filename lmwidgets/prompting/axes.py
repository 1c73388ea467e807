"""Named axes: what varies between the columns of a comparison.

An axis is a name, its values and their ids, as in pytest's stacked ``parametrize`` or Hydra's
multirun: ``prompt`` (wordings of the prompt), ``system`` (system prompts), ``field:NAME`` (the
values of a template field), ``strategy``, the model and adapter (``target``: a model and one of
its adapters), ``temperature``, ``top_p`` and ``trial`` (repeated samples). Each axis is one small
class that says how one of its values changes a column's :class:`Spec`; :func:`expand` takes the
product of all of them and :func:`label_of` names each column from its coordinates. A new
built-in axis is a new :class:`Axis` subclass and a place in :data:`PRODUCT_ORDER`; other kinds
of axis (probes, structured answers, your own) are registered axis kinds
(:mod:`lmwidgets.core.axis_kinds`) whose values are kept in ``Spec.kinds`` by a
:class:`KindAxis`, and which are placed in these orders after the axis they name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lmwidgets.core.axis_kinds import with_kinds
from lmwidgets.core.layout import value_label

if TYPE_CHECKING:
    from lmwidgets.engines.base import Engine

#: The order the built-in axes multiply in: the last varies fastest (strategies outside models
#: and adapters, as columns have always been ordered); registered kinds go after the axis they
#: name (:func:`product_order`).
PRODUCT_ORDER = (
    "prompt",
    "system",
    "field",
    "strategy",
    "target",
    "temperature",
    "top_p",
    "trial",
)
#: The order the parts of a column label are written in (registered kinds: :func:`label_order`).
LABEL_ORDER = (
    "model",
    "prompt",
    "system",
    "field",
    "strategy",
    "adapter",
    "temperature",
    "top_p",
    "trial",
)


def product_order() -> tuple[str, ...]:
    """:data:`PRODUCT_ORDER` with the registered axis kinds in their places."""
    return with_kinds(PRODUCT_ORDER)


def label_order() -> tuple[str, ...]:
    """:data:`LABEL_ORDER` with the registered axis kinds in their places."""
    return with_kinds(LABEL_ORDER)


@dataclass(frozen=True)
class Spec:
    """One column before dataset items: the coordinates chosen so far and what they set."""

    engine: Engine
    adapter: str | None = None
    template: str = ""
    system: str | None = None
    strategy: str = "zero-shot"
    fields: Mapping[str, Any] = field(default_factory=dict)
    temperature: float = 0.0
    top_p: float = 1.0
    trial: int = 0
    #: The column's value on each registered axis kind (``{"probe": Probe(...), "constraint":
    #: "enforced"}``; :mod:`lmwidgets.core.axis_kinds`); a kind the column has no value on is
    #: absent.
    kinds: Mapping[str, Any] = field(default_factory=dict)
    #: (axis name, value id) for every axis applied so far, in product order.
    coords: tuple[tuple[str, str], ...] = ()

    @property
    def sampled(self) -> bool:
        """Whether this column samples (so repeated trials can differ)."""
        return self.temperature > 0 or self.strategy == "self-consistency"

    def at(self, axis: str, value_id: str, **changes: Any) -> Spec:
        """This spec with coordinate ``axis = value_id`` and ``changes`` applied."""
        return replace(self, coords=(*self.coords, (axis, value_id)), **changes)


@dataclass(frozen=True)
class Axis:
    """A named axis: its values (``(id, value)`` pairs) and how one of them sets a spec.

    ``shown`` says whether the axis is part of the column labels (an axis the user asked for,
    even with one value, is named: ``--temperatures 0.7`` labels its column ``T=0.7``)."""

    name: str
    values: tuple[tuple[str, Any], ...]
    shown: bool = True

    @property
    def kind(self) -> str:
        """The axis' kind (``field`` for every ``field:NAME``)."""
        return self.name.split(":", 1)[0]

    def applies(self, spec: Spec) -> bool:
        """Whether every value applies to ``spec`` (else only the first one)."""
        return True

    def values_for(self, spec: Spec) -> tuple[tuple[str, Any], ...]:
        """The values that apply to ``spec``: all of them, or only the first."""
        return self.values if self.applies(spec) else self.values[:1]

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        raise NotImplementedError


class PromptAxis(Axis):
    """Wordings of the prompt (``--- NAME`` lines, ``--prompts VAR``)."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, template=value)


class SystemAxis(Axis):
    """System prompts (``--systems VAR``); the value None is no system prompt."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, system=value)


class FieldAxis(Axis):
    """The values of one ``{field}`` of the template (``--each FIELD``)."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        field_name = self.name.split(":", 1)[1]
        return spec.at(self.name, value_id, fields={**spec.fields, field_name: value})


class StrategyAxis(Axis):
    """Prompting strategies (``--compare``)."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, strategy=value)


class KindAxis(Axis):
    """The axis of a registered axis kind (:mod:`lmwidgets.core.axis_kinds`): its name is the
    kind's, and a value is kept in ``Spec.kinds`` for the kind's own hooks."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, kinds={**spec.kinds, self.name: value})


class TargetAxis(Axis):
    """Models and their adapters (``--models``, ``--adapters``): each value is an (engine,
    adapter) pair, and sets two coordinates, ``model`` and ``adapter``. ``shown`` is the set
    of the two that the labels name."""

    def __init__(
        self, pairs: Sequence[tuple[Engine, str | None]], models: bool, adapters: bool
    ) -> None:
        values = tuple((f"{e.name}:{a or 'base'}", (e, a)) for e, a in pairs)
        super().__init__("target", values, shown=models or adapters)
        object.__setattr__(self, "named", {"model": models, "adapter": adapters})

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        engine, adapter = value
        spec = replace(spec, engine=engine, adapter=adapter)
        return spec.at("model", engine.name).at("adapter", adapter or "base")


class TemperatureAxis(Axis):
    """A temperature sweep (``--temperatures``)."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, temperature=value)


class TopPAxis(Axis):
    """A top-p sweep (``--top-ps``)."""

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, top_p=value)


class TrialAxis(Axis):
    """Repeated samples (``--trials N``): trial ``k`` runs with seed ``seed + k``. Greedy
    columns give the same text every time, so they run once (trial 1)."""

    def applies(self, spec: Spec) -> bool:
        return spec.sampled

    def apply(self, spec: Spec, value_id: str, value: Any) -> Spec:
        return spec.at(self.name, value_id, trial=value)


def ordered(axes: Sequence[Axis]) -> list[Axis]:
    """``axes`` in :func:`product_order` (several ``field:`` axes keep their given order)."""
    order = product_order()
    return sorted(axes, key=lambda axis: order.index(axis.kind))


def expand(axes: Sequence[Axis], base: Spec) -> list[Spec]:
    """The product of ``axes`` applied to ``base``, the last axis varying fastest."""
    specs = [base]
    for axis in ordered(axes):
        specs = [
            axis.apply(spec, value_id, value)
            for spec in specs
            for value_id, value in axis.values_for(spec)
        ]
    return specs


def shown_axes(axes: Sequence[Axis]) -> set[str]:
    """The coordinate names that column labels include."""
    names: set[str] = set()
    for axis in axes:
        if isinstance(axis, TargetAxis):
            names.update(name for name, on in axis.named.items() if on)  # type: ignore[attr-defined]
        elif axis.shown:
            names.add(axis.name)
    return names


def label_of(spec: Spec, shown: set[str], dataset: bool) -> str:
    """A column's label: its shown coordinates in :func:`label_order`, each written as its
    axis writes it (``T=0.7``, ``trial 2``, ``city=Paris``); with nothing shown, the model's
    name (and its adapter). On a dataset, a run of one strategy still names it."""
    coords = dict(spec.coords)
    names = [name for name in coords if name in shown]
    if dataset and not names:
        names.append("strategy")
    order = label_order()
    names.sort(key=lambda name: order.index(name.split(":", 1)[0]))
    parts = [value_label(name, coords[name]) for name in names]
    if parts:
        return " · ".join(parts)
    engine_name = spec.engine.name
    return engine_name if spec.adapter is None else f"{engine_name} · {spec.adapter}"
