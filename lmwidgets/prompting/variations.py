"""The user's own variations, read into axes: prompt wordings (``--- NAME`` lines in the cell,
``--prompts VAR``), system prompts (``--systems VAR``), template fields over lists (``--each``),
settings sweeps (``--temperatures``, ``--top-ps``) and repeated trials (``--trials``).

Every bad input is a clear error here, before anything runs: duplicate or empty variants, a
field that is not in the prompt or not a list or dict, a value given twice, a column axis that
does not vary.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from lmwidgets.checks import shown
from lmwidgets.core.axis_kinds import with_kinds
from lmwidgets.core.layout import coordinates, varying
from lmwidgets.errors import InvalidArgumentError, PromptError, StrategyError
from lmwidgets.prompting.axes import (
    Axis,
    FieldAxis,
    SystemAxis,
    TemperatureAxis,
    TopPAxis,
    TrialAxis,
)

#: A line that starts a named prompt variant: three dashes, a space, a name.
VARIANT_LINE = re.compile(r"^--- (?P<name>\S.*?)\s*$", re.MULTILINE)
#: The name of the text before the first ``--- NAME`` line.
FIRST_VARIANT = "A"
#: A system prompt named so (or given as None) is no system prompt.
NO_SYSTEM = "none"
#: Most repeated trials per column.
MAX_TRIALS = 100
#: Longest column id made from a value (a list's values name their columns).
MAX_ID = 40
#: What ``--columns`` may name (besides ``field:NAME``), without the registered axis kinds
#: (:func:`column_axes`).
COLUMN_AXES = (
    "prompt",
    "system",
    "strategy",
    "adapter",
    "model",
    "temperature",
    "top_p",
    "trial",
)


def column_axes() -> tuple[str, ...]:
    """:data:`COLUMN_AXES` with the registered axis kinds in their places."""
    return with_kinds(COLUMN_AXES)


def _letters(count: int) -> list[str]:
    """``A, B, ..., Z, AA, AB, ...``: names of unnamed variants."""
    names = []
    for index in range(count):
        name = ""
        index += 1
        while index:
            index, rest = divmod(index - 1, 26)
            name = chr(65 + rest) + name
        names.append(name)
    return names


def split_prompt_variants(text: str) -> list[tuple[str, str]]:
    """The cell's prompt variants: ``[(name, text)]``. A ``--- NAME`` line starts a variant;
    the text before the first one is variant ``A`` (when it is not blank). A cell without such
    lines is one variant, named ``A``. A bare ``---`` (a Markdown rule) stays prompt text."""
    matches = list(VARIANT_LINE.finditer(text))
    if not matches:
        return [(FIRST_VARIANT, text)]
    parts: list[tuple[str, str]] = []
    head = text[: matches[0].start()]
    if head.strip():
        parts.append((FIRST_VARIANT, head))
    for match, after in zip(matches, [*matches[1:], None], strict=True):
        end = after.start() if after is not None else len(text)
        parts.append((match.group("name"), text[match.end() : end]))
    return _checked_variants(parts, "The prompt's variants (--- NAME lines)")


def _checked_variants(parts: list[tuple[str, str]], what: str) -> list[tuple[str, str]]:
    names = [name for name, _ in parts]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise PromptError(f"{what} name {', '.join(map(repr, twice))} more than once.")
    for name, body in parts:
        if not body.strip():
            raise PromptError(f"{what}: variant {name!r} is empty. Write its prompt below it.")
    return [(name, body.strip()) for name, body in parts]


def named_values(value: Any, flag: str, *, letters: bool = True) -> list[tuple[str, Any]]:
    """``(name, value)`` pairs from a dict (its keys name them) or a list (``A, B, ...``)."""
    if isinstance(value, Mapping):
        pairs = [(str(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        names = _letters(len(value)) if letters else [str(i + 1) for i in range(len(value))]
        pairs = list(zip(names, value, strict=True))
    else:
        raise InvalidArgumentError(
            f"{flag} takes a dict {{name: text}} or a list of texts, not {type(value).__name__}."
        )
    if not pairs:
        raise InvalidArgumentError(f"{flag} is empty: give at least one variant.")
    return pairs


def prompt_variants(text: str, prompts: Any) -> list[tuple[str, str]]:
    """The prompt wordings: ``prompts=`` (dict or list), else the cell's ``--- NAME`` lines."""
    if prompts is None:
        return split_prompt_variants(text)
    if text.strip():
        raise PromptError(
            "Give the prompt variants either in the cell (--- NAME lines) or with --prompts VAR, "
            "not both: leave the cell body empty with --prompts."
        )
    pairs = named_values(prompts, "--prompts")
    for name, body in pairs:
        if not isinstance(body, str):
            raise PromptError(f"--prompts: variant {name!r} is {type(body).__name__}, not text.")
    return _checked_variants(pairs, "--prompts")


def system_axis(systems: Any, system: str | None) -> SystemAxis | None:
    """The system prompts axis (``systems=``): None when not given; ``none`` or a None value is
    no system prompt."""
    if systems is None:
        return None
    if system is not None:
        raise InvalidArgumentError("Give either --system TEXT or --systems VAR, not both.")
    values = []
    for name, text in named_values(systems, "--systems"):
        if text is not None and not isinstance(text, str):
            raise InvalidArgumentError(
                f"--systems: {name!r} is {type(text).__name__}; give a text or None."
            )
        empty = text is None or name.lower() == NO_SYSTEM or not text.strip()
        values.append((name, None if empty else text))
    _unique_names([name for name, _ in values], "--systems")
    return SystemAxis("system", tuple(values))


def _unique_names(names: Sequence[str], flag: str) -> None:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidArgumentError(f"{flag} names {', '.join(map(repr, twice))} more than once.")


def _field_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\{)\{" + re.escape(name) + r"(?=[.\[!:}])")


def template_fields(text: str) -> list[str]:
    """The names of the ``{field}`` placeholders of ``text`` (``{{`` escapes skipped)."""
    found = re.findall(r"(?<!\{)\{([A-Za-z_]\w*)(?=[.\[!:}])", text)
    return list(dict.fromkeys(found))


def _value_id(value: Any) -> str:
    try:
        text = " ".join(str(value).split())
    except Exception:
        text = type(value).__name__
    return text if len(text) <= MAX_ID else text[: MAX_ID - 1] + "…"


def field_axes(each: Any, templates: Sequence[str], namespace: Mapping[str, Any]) -> list[Axis]:
    """One axis per ``--each`` field: its list's values (ids from the values) or its dict's
    values (ids from the keys); several fields multiply."""
    if each is None:
        return []
    names = [n.strip() for n in (each.split(",") if isinstance(each, str) else each)]
    names = [n for n in names if n]
    if not names:
        raise InvalidArgumentError("--each needs at least one field name.")
    _unique_names(names, "--each")
    axes: list[Axis] = []
    for name in names:
        if not any(_field_pattern(name).search(t) for t in templates):
            raise InvalidArgumentError(
                f"--each {name}: the prompt has no {{{name}}} field. Write {{{name}}} where "
                "each value goes."
            )
        if name not in namespace:
            raise InvalidArgumentError(
                f"--each {name}: no variable called {name!r} is defined in the notebook."
            )
        axes.append(FieldAxis(f"field:{name}", _field_values(name, namespace[name])))
    return axes


def _field_values(name: str, value: Any) -> tuple[tuple[str, Any], ...]:
    if isinstance(value, Mapping):
        pairs = [(_value_id(key), item) for key, item in value.items()]
    elif isinstance(value, (list, tuple)):
        pairs = [(_value_id(item), item) for item in value]
    else:
        raise InvalidArgumentError(
            f"--each {name}: {name} is {type(value).__name__} {shown(value)}; --each takes a "
            "list (one column per value) or a dict (its keys name the columns)."
        )
    if not pairs:
        raise InvalidArgumentError(f"--each {name}: {name} is empty.")
    ids, seen = [], {}
    for value_id, _ in pairs:  # equal ids (two values that read alike) get a number
        seen[value_id] = seen.get(value_id, 0) + 1
        ids.append(value_id if seen[value_id] == 1 else f"{value_id} #{seen[value_id]}")
    return tuple(zip(ids, [item for _, item in pairs], strict=True))


def number_list(value: Any, flag: str) -> list[float] | None:
    """``"0,0.7,1.2"`` or a list of numbers, as floats (None when not given)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise InvalidArgumentError(f"{flag} takes numbers such as 0,0.7,1.2.")
    numbers = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        try:
            if isinstance(item, bool):
                raise TypeError
            numbers.append(float(item))
        except (TypeError, ValueError):
            raise InvalidArgumentError(
                f"{flag}: {shown(item)} is not a number (write e.g. {flag} 0,0.7,1.2)."
            ) from None
    if not numbers:
        raise InvalidArgumentError(f"{flag} needs at least one value.")
    _unique_names([f"{n:g}" for n in numbers], flag)
    return numbers


def sweep_axes(temperatures: Any, top_ps: Any, temperature: float, top_p: float) -> list[Axis]:
    """The temperature and top-p sweeps (each value checked as ``--temperature`` would be)."""
    from lmwidgets.engines.base import GenerationSettings

    axes: list[Axis] = []
    temps = number_list(temperatures, "--temperatures")
    if temps is not None:
        if temperature != 0:
            raise InvalidArgumentError("Give either --temperature or --temperatures, not both.")
        for value in temps:
            GenerationSettings(temperature=value)
        axes.append(TemperatureAxis("temperature", tuple((f"{v:g}", v) for v in temps)))
    ps = number_list(top_ps, "--top-ps")
    if ps is not None:
        if top_p != 1.0:
            raise InvalidArgumentError("Give either --top-p or --top-ps, not both.")
        for value in ps:
            GenerationSettings(top_p=value)
        axes.append(TopPAxis("top_p", tuple((f"{v:g}", v) for v in ps)))
    return axes


def trial_axis(trials: Any) -> TrialAxis | None:
    """``--trials N``: trials 1..N (None for one trial)."""
    if trials is None:
        return None
    if isinstance(trials, bool) or not isinstance(trials, int):
        raise InvalidArgumentError(f"--trials must be a whole number, not {shown(trials)}.")
    if not 1 <= trials <= MAX_TRIALS:
        raise InvalidArgumentError(f"--trials must be between 1 and {MAX_TRIALS}, not {trials}.")
    if trials == 1:
        return None
    return TrialAxis("trial", tuple((str(k + 1), k) for k in range(trials)))


def trial_seed(seed: int | None) -> int:
    """The first trial's seed: the one given, else a fresh one (recorded with every trial)."""
    return seed if seed is not None else secrets.randbelow(2**31)


def column_axis_name(columns: str | None) -> str | None:
    """``--columns AXIS`` as an axis name (``top-p`` is ``top_p``)."""
    if columns is None:
        return None
    axes = column_axes()
    if not isinstance(columns, str) or not columns.strip():
        raise StrategyError("--columns names an axis: " + ", ".join(axes) + ", field:NAME.")
    name = columns.strip().replace("top-p", "top_p")
    if name not in axes and not name.startswith("field:"):
        near = difflib.get_close_matches(name, axes, n=1)
        hint = f" Did you mean {near[0]}?" if near else ""
        raise StrategyError(
            f"--columns {columns}: not an axis ({', '.join(axes)}, field:NAME).{hint}"
        )
    return name


def check_columns(columns: str | None, variants: Sequence[Any]) -> None:
    """``--columns`` must name an axis that varies in this run."""
    if columns is None:
        return
    vary = varying([coordinates(v) for v in variants])
    if columns not in vary:
        varied = ", ".join(vary) or "nothing"
        raise StrategyError(
            f"--columns {columns}: that axis does not vary in this run (what varies: {varied})."
        )
