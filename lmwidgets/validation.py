"""One validation layer for everything a user types or passes in.

Every argument of ``%%prompt``, ``%lm`` and the Python API (:func:`lmwidgets.prompt`,
:func:`~lmwidgets.load_model`, :func:`~lmwidgets.connect`, :func:`~lmwidgets.load_adapter`,
:func:`~lmwidgets.train_lora`) is checked here, before anything is loaded or generated, with the
shared rules of :mod:`lmwidgets.checks`. Each failure is an
:class:`~lmwidgets.errors.LmWidgetsError` subclass whose message names the argument (as the
notebook spells it: ``--seed``) and says what to do.

The rules:

- **Numbers** are whole numbers or finite floats in their range; integers stay within what torch
  accepts (a signed 64-bit value, :data:`~lmwidgets.checks.MAX_INT64`).
- **Names, paths and choices** (``--model``, ``--as``, ``--adapter``, ``SOURCE``...) are text
  without control characters or lone surrogates (they would be unreadable in messages and
  unreachable in a notebook); such a value is refused, naming the character and where it is.
- **Prompt text** (the cell body, ``--system``, ``--cot-instruction`` and whatever variables,
  examples and dataset items put into it) is kept, but lone surrogates and control characters
  other than newline, tab and carriage return, which no tokenizer can encode, are replaced with
  U+FFFD and a note (shown under the view and kept in ``Comparison.notes``) says which and where.
- **--out** is a Python identifier that is not a keyword or a ``__dunder__`` name; a builtin
  (``print``), one of IPython's own names (``In``, ``_``) or a notebook variable that holds
  something other than a :class:`~lmwidgets.core.results.Comparison` is only replaced with
  ``--force-out``.
- **Work the user sizes** is bounded: more than :data:`MAX_SAMPLES` self-consistency samples per
  column, more than :data:`MAX_ROWS` generated rows (dataset items x columns x samples) or more
  than :data:`MAX_COLUMNS` columns in one run needs ``--yes`` (``confirm=True``); more than
  :data:`MAX_CONFIRMED_ROWS` rows is refused even then (split the work into runs).
"""

from __future__ import annotations

import builtins
import keyword
import os
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmwidgets.checks import (
    MAX_INT64,
    finite_number,
    optional_whole_number,
    shown,
    whole_number,
)
from lmwidgets.errors import InvalidArgumentError

#: Most self-consistency samples per column one run takes without confirmation.
MAX_SAMPLES = 64
#: Most generated rows (dataset items x columns x samples) one run takes without confirmation.
MAX_ROWS = 2_000
#: Most columns (strategies x adapters x models) one run takes without confirmation.
MAX_COLUMNS = 32
#: Most generated rows one run takes even when confirmed (split larger work into runs).
MAX_CONFIRMED_ROWS = 100_000

#: Most steps :func:`~lmwidgets.train_lora` takes (it is for trying ideas in seconds).
MAX_TRAINING_STEPS = 10_000

#: Control characters that prompt text may hold.
ALLOWED_CONTROLS = frozenset("\n\t\r")
#: What unreadable characters in prompt text become.
REPLACEMENT = "\ufffd"

_CONFIRM = "add --yes to run it anyway (confirm=True in the Python API)"


# -- text ------------------------------------------------------------------------------------
def _unreadable(char: str) -> bool:
    """A lone surrogate, or a control character other than newline, tab and carriage return."""
    category = unicodedata.category(char)
    return category == "Cs" or (category == "Cc" and char not in ALLOWED_CONTROLS)


def describe_character(char: str) -> str:
    """``U+0000 (a control character)`` or ``U+DCFF (a lone surrogate)``."""
    kind = "a lone surrogate" if unicodedata.category(char) == "Cs" else "a control character"
    return f"U+{ord(char):04X} ({kind})"


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return f"line {line}, column {column}" if "\n" in text else f"position {column}"


def unreadable_characters(text: str) -> list[int]:
    """Indices of the characters of ``text`` that no tokenizer can encode."""
    return [index for index, char in enumerate(text) if _unreadable(char)]


def printable(text: str) -> str:
    """``text`` with lone surrogates and control characters (but newlines) shown as escapes
    (``\\udcff``), so a message that quotes what the user typed can always be shown."""
    return "".join(
        char if char == "\n" or not _unreadable(char) else repr(char)[1:-1] for char in text
    )


def clean_prompt_text(text: str, what: str) -> tuple[str, str | None]:
    """``text`` with unreadable characters replaced by U+FFFD, and a note saying which and where
    (None when there were none). ``what`` names the text: ``the prompt``, ``--system``..."""
    found = unreadable_characters(text)
    if not found:
        return text, None
    cleaned = "".join(REPLACEMENT if _unreadable(c) else c for c in text)
    kinds = list(dict.fromkeys(describe_character(text[i]) for i in found))
    listed = ", ".join(kinds[:5]) + (f" and {len(kinds) - 5} more" if len(kinds) > 5 else "")
    where = _position(text, found[0])
    count = f"{len(found)} character{'s' if len(found) != 1 else ''}"
    note = (
        f"{what} held {count} no model can read ({listed}; the first at {where}): each was "
        "replaced with U+FFFD. Remove them from the text to silence this note."
    )
    return cleaned, note


def plain_text(value: Any, name: str, *, optional: bool = True) -> str | None:
    """A name, path or choice: a str without control characters or lone surrogates."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{name} must be text, not {type(value).__name__} {shown(value)}."
        )
    found = [i for i, c in enumerate(value) if _unreadable(c) or c in ALLOWED_CONTROLS]
    if found:
        raise InvalidArgumentError(
            f"{name} {value!r} holds {describe_character(value[found[0]])} at "
            f"{_position(value, found[0])}: retype it without that character."
        )
    return value


def model_name(value: Any, name: str = "--as") -> str | None:
    """A name to load a model under: readable text that ``--model NAME`` and ``--models A,B``
    can reach again (no commas, no spaces around it; empty means the default name)."""
    plain_text(value, name)
    if value and (value != value.strip() or "," in value):
        raise InvalidArgumentError(
            f"{name} {value!r} could not be named again in --model or --models A,B: use a "
            "name without commas or spaces around it (e.g. --as small)."
        )
    return value


def text_list(value: Any, name: str) -> str | list[str] | None:
    """``A,B`` text or a list/tuple of names (``--compare``, ``--adapters``, ``--models``)."""
    if value is None or isinstance(value, str):
        return plain_text(value, name)
    if isinstance(value, (list, tuple)):
        return [plain_text(item, f"{name} item", optional=False) or "" for item in value]
    raise InvalidArgumentError(
        f"{name} must be comma-separated text (A,B) or a list of names, not {type(value).__name__}."
    )


def flag(value: Any, name: str) -> bool:
    """A yes/no option: True or False (not 1, not "yes")."""
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False, not {shown(value)}.")
    return value


def optional_flag(value: Any, name: str) -> bool | None:
    return None if value is None else flag(value, name)


def positive_number(value: Any, name: str) -> float:
    """A finite number above 0 (seconds, rates)."""
    if not finite_number(value) or not value > 0:
        raise InvalidArgumentError(f"{name} must be a finite number above 0, not {shown(value)}.")
    return float(value)


def finite(value: Any, name: str) -> float:
    """Any finite number."""
    if not finite_number(value):
        raise InvalidArgumentError(f"{name} must be a finite number, not {shown(value)}.")
    return float(value)


def callback(value: Any, name: str) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise InvalidArgumentError(f"{name} must be a function (or None), not {shown(value)}.")
    return value


def path_like(value: Any, name: str, *, optional: bool = False) -> Any:
    """A path given as text or an ``os.PathLike`` (its text checked like a name)."""
    if value is None and optional:
        return None
    if isinstance(value, os.PathLike):
        text = os.fspath(value)
        if isinstance(text, bytes):
            raise InvalidArgumentError(f"{name} must be a text path, not bytes.")
        plain_text(text, name, optional=False)
        return value
    if not isinstance(value, str):
        raise InvalidArgumentError(
            f"{name} must be a path (text or pathlib.Path), not {type(value).__name__}."
        )
    plain_text(value, name, optional=False)
    if not value.strip():
        raise InvalidArgumentError(f"{name} is empty: give a path.")
    return value


# -- --out -----------------------------------------------------------------------------------
#: IPython's own names in a notebook's namespace (output history, In/Out...).
_IPYTHON_NAMES = frozenset(
    {"In", "Out", "get_ipython", "exit", "quit", "_", "__", "___", "_i", "_ii", "_iii"}
    | {"_ih", "_oh", "_dh", "_sh"}
)


def _ipython_name(name: str) -> bool:
    if name in _IPYTHON_NAMES:
        return True
    rest = name[2:] if name.startswith("_i") else name[1:] if name.startswith("_") else ""
    return rest.isdigit()  # _5, _i5: output and input history


def out_name(
    name: Any, namespace: Mapping[str, Any], *, force: bool = False, flag: str = "--out"
) -> str:
    """The variable name ``--out`` binds, checked (see the module docstring)."""
    from lmwidgets.core.results import Comparison

    plain_text(name, flag, optional=False)
    if not name.isidentifier():
        raise InvalidArgumentError(
            f"{flag} {name!r} is not a Python name, so no code could reach the result: use "
            "letters, digits and underscores, not starting with a digit (e.g. --out answer)."
        )
    if keyword.iskeyword(name):
        raise InvalidArgumentError(
            f"{flag} {name!r} is a Python keyword and cannot be a variable: pick another name."
        )
    if name.startswith("__") and name.endswith("__"):
        raise InvalidArgumentError(
            f"{flag} {name!r}: names of the form __name__ belong to Python: pick another name."
        )
    if force:
        return name
    fix = "pick another name, or add --force-out to replace it anyway"
    if name in namespace and not isinstance(namespace[name], Comparison):
        what = type(namespace[name]).__name__
        if _ipython_name(name):
            raise InvalidArgumentError(f"{flag} {name!r} is one of IPython's own names: {fix}.")
        raise InvalidArgumentError(
            f"{flag} {name!r} would replace the notebook variable {name!r} (a {what}), which "
            f"does not hold an earlier result: {fix}."
        )
    if name not in namespace and hasattr(builtins, name):
        raise InvalidArgumentError(
            f"{flag} {name!r} would hide Python's built-in {name!r} in this notebook: {fix}."
        )
    if name not in namespace and _ipython_name(name):
        raise InvalidArgumentError(f"{flag} {name!r} is one of IPython's own names: {fix}.")
    return name


# -- the size of a run ------------------------------------------------------------------------
def check_samples(samples: Any, *, confirm: bool) -> int | None:
    """``--samples`` as a whole number, at most :data:`MAX_SAMPLES` unless confirmed."""
    optional_whole_number(samples, "--samples", minimum=1)
    if samples is not None and samples > MAX_CONFIRMED_ROWS:
        raise InvalidArgumentError(
            f"--samples {samples:,} is more than the {MAX_CONFIRMED_ROWS:,} rows one run can "
            "generate, even with --yes: use far fewer samples (5 to 20 give a stable vote)."
        )
    if samples is not None and samples > MAX_SAMPLES and not confirm:
        raise InvalidArgumentError(
            f"--samples {samples:,} asks for {samples:,} sampled answers per column, more than "
            f"the {MAX_SAMPLES} a run takes without confirmation (it could run for hours): "
            f"lower --samples, or {_CONFIRM}."
        )
    return samples


def check_dataset_size(dataset: Any, *, confirm: bool) -> None:
    """A dataset of more than :data:`MAX_ROWS` items needs confirmation (checked before its
    items are read; the run's full size is checked by :func:`check_run_size`)."""
    try:
        size = len(dataset)
    except TypeError:
        return
    if isinstance(size, int) and size > MAX_CONFIRMED_ROWS:
        raise InvalidArgumentError(
            f"--dataset has {size:,} items, more than the {MAX_CONFIRMED_ROWS:,} rows one run "
            f"can take, even with --yes: run it in slices ({_slice(dataset, 0, 10000)}, "
            f"{_slice(dataset, 10000, 20000)}...)."
        )
    if isinstance(size, int) and size > MAX_ROWS and not confirm:
        raise InvalidArgumentError(
            f"--dataset has {size:,} items, more than the {MAX_ROWS:,} rows a run generates "
            f"without confirmation: run a slice (e.g. {_slice(dataset, 0, 100)}) first, or "
            f"{_CONFIRM}."
        )


def _slice(dataset: Any, start: int, stop: int) -> str:
    """How to take rows ``start:stop`` of ``dataset``: a Hugging Face ``Dataset`` sliced with
    ``[:100]`` gives a dict of columns, not rows, so it needs ``select``."""
    if type(dataset).__module__.split(".")[0] == "datasets":
        return f"data.select(range({start}, {stop}))" if start else f"data.select(range({stop}))"
    return f"data[{start}:{stop}]" if start else f"data[:{stop}]"


def check_run_size(variants: Sequence[Any], *, confirm: bool, judge: Any = None) -> None:
    """Refuse a run larger than the documented limits unless ``confirm`` (``--yes``), and one
    of more than :data:`MAX_CONFIRMED_ROWS` rows in any case. A ``judge``'s calls count as
    generated rows (:mod:`lmwidgets.prompting.judging`)."""
    columns = len(dict.fromkeys(v.label for v in variants))
    items = len(dict.fromkeys(v.input for v in variants))
    calls = _judge_calls(judge, variants)
    rows = sum(v.samples for v in variants) + calls
    if rows > MAX_CONFIRMED_ROWS:
        raise InvalidArgumentError(
            f"This run would generate {rows:,} rows, more than the {MAX_CONFIRMED_ROWS:,} one "
            "run can take, even with --yes: split it into several runs (slices of the dataset, "
            "fewer columns or --samples)."
        )
    if confirm:
        return
    samples = max((v.samples for v in variants), default=1)
    if samples > MAX_SAMPLES:
        raise InvalidArgumentError(
            f"This run takes {samples:,} self-consistency samples per column, more than the "
            f"{MAX_SAMPLES} a run takes without confirmation: lower --samples, or {_CONFIRM}."
        )
    if columns > MAX_COLUMNS:
        raise InvalidArgumentError(
            f"This run has {columns} columns (strategies x adapters x models), more than the "
            f"{MAX_COLUMNS} one view takes without confirmation: compare fewer at once, or "
            f"{_CONFIRM}."
        )
    if rows > MAX_ROWS:
        size = f"{items:,} item(s) x {columns} column(s)" + (
            f" x up to {samples} samples" if samples > 1 else ""
        )
        size += f" + {calls:,} judge calls" if calls else ""
        raise InvalidArgumentError(
            f"This run generates {rows:,} rows ({size}), more than the {MAX_ROWS:,} a run takes "
            f"without confirmation: run fewer items, columns or --samples, or {_CONFIRM}."
        )


def _judge_calls(judge: Any, variants: Sequence[Any]) -> int:
    """The generations a judge adds to a run (0 without one)."""
    if judge is None:
        return 0
    width = len(dict.fromkeys(v.label for v in variants)) or 1
    rows = [list(variants[i : i + width]) for i in range(0, len(variants), width)]
    return int(judge.calls(rows))


# -- prompt text inside a plan ----------------------------------------------------------------
def _clean_content(content: Any, found: list[str]) -> Any:
    if isinstance(content, str):
        cleaned, note = clean_prompt_text(content, "")
        if note:
            found.extend(describe_character(content[i]) for i in unreadable_characters(content))
        return cleaned
    if isinstance(content, list):
        return [
            {**part, "text": _clean_content(part["text"], found)}
            if isinstance(part, dict) and isinstance(part.get("text"), str)
            else part
            for part in content
        ]
    return content


def clean_variants(variants: Sequence[Any]) -> str | None:
    """Replace unreadable characters in every variant's messages and dataset fields (text that
    came from variables, examples or a dataset); one note for all of them (None: none)."""
    found: list[str] = []
    first = None
    for variant in variants:
        before = len(found)
        variant.messages = [
            {**m, "content": _clean_content(m.get("content"), found)} for m in variant.messages
        ]
        for attribute in ("input", "expected", "template"):
            value = getattr(variant, attribute, None)
            if isinstance(value, str):
                setattr(variant, attribute, _clean_content(value, found))
        if isinstance(variant.item, dict):
            variant.item = {k: _clean_content(v, found) for k, v in variant.item.items()}
        if first is None and len(found) > before:
            first = variant.label
    if not found:
        return None
    kinds = list(dict.fromkeys(found))
    listed = ", ".join(kinds[:5]) + (f" and {len(kinds) - 5} more" if len(kinds) > 5 else "")
    return (
        f"Text from variables, examples or the dataset held {len(found)} character(s) no model "
        f"can read ({listed}; first in column {first!r}): each was replaced with U+FFFD."
    )


# -- the Python API ---------------------------------------------------------------------------
def _strategy_option_names() -> set[str]:
    from lmwidgets.prompting.strategies import option_names

    return option_names()


def _unknown_prompt_options(unknown: list[str]) -> str:
    """The error for keywords :func:`lmwidgets.prompt` does not take: the closest option for a
    typo, and every option it takes, its own keywords (``max_new_tokens``, ``temperature``...)
    as well as the strategy options (listing only those read as if the basics were missing)."""
    import difflib
    import inspect

    from lmwidgets.api import prompt

    own = {
        name
        for name, p in inspect.signature(prompt).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    known = sorted(own | _strategy_option_names())
    closest = difflib.get_close_matches(unknown[0], known, n=1)
    hint = f" Did you mean {closest[0]!r}?" if closest else ""
    return (
        f"lmwidgets.prompt() has no option {', '.join(map(repr, unknown))}.{hint} "
        f"Options: {', '.join(known)}."
    )


def _templates(value: Any) -> Any:
    from lmwidgets.prompting.strategies import Templates

    if value is None or isinstance(value, Templates):
        return value
    if not isinstance(value, Mapping):
        raise InvalidArgumentError(
            "templates must be a dict of wording to override (e.g. "
            f"{{'cot_instruction': '...'}}) or a Templates, not {type(value).__name__}."
        )
    for key, text in value.items():
        if key == "sc_temperature":
            from lmwidgets.engines.base import MIN_TEMPERATURE

            if not finite_number(text) or not text >= MIN_TEMPERATURE:
                raise InvalidArgumentError(
                    f"templates['sc_temperature'] must be a number >= {MIN_TEMPERATURE}, not "
                    f"{shown(text)}."
                )
        elif not isinstance(text, str):
            raise InvalidArgumentError(
                f"templates[{shown(key)}] must be text, not {type(text).__name__}."
            )
    return value


def check_prompt_call(
    text: Any,
    *,
    model: Any,
    system: Any,
    variables: Any,
    display: Any,
    stop: Any,
    on_rerun: Any,
    confirm: Any,
    options: dict[str, Any],
) -> None:
    """The arguments of :func:`lmwidgets.prompt` (the generation settings are checked by
    :class:`~lmwidgets.engines.base.GenerationSettings`)."""
    from lmwidgets.errors import PromptError

    if not isinstance(text, str):
        raise PromptError(f"The prompt must be text, not {type(text).__name__}.")
    plain_text(model, "--model")
    if system is not None and not isinstance(system, str):
        raise InvalidArgumentError(f"--system must be text, not {type(system).__name__}.")
    if variables is not None and not isinstance(variables, Mapping):
        raise InvalidArgumentError(
            f"variables must be a dict of names to values, not {type(variables).__name__}."
        )
    optional_flag(display, "display")
    flag(confirm, "confirm")
    if stop is not None and not callable(getattr(stop, "is_set", None)):
        raise InvalidArgumentError(f"stop must be a StopSignal, not {type(stop).__name__}.")
    callback(on_rerun, "on_rerun")
    unknown = sorted(set(options) - _strategy_option_names())
    if unknown:
        raise InvalidArgumentError(_unknown_prompt_options(unknown))
    for name in ("strategy", "adapter", "region_mode"):
        plain_text(options.get(name), f"--{name.replace('_', '-')}")
    for name in ("compare", "adapters", "models"):
        text_list(options.get(name), f"--{name}")
    _templates(options.get("templates"))
    optional_whole_number(options.get("shots"), "--shots", minimum=0)
    if "batch_size" in options:
        whole_number(options["batch_size"], "--batch-size", minimum=1)
    check_samples(options.get("samples"), confirm=confirm)
    if options.get("dataset") is not None:
        check_dataset_size(options["dataset"], confirm=confirm)
    region = options.get("region")
    if isinstance(region, str):
        plain_text(region, "--region")
    else:
        from lmwidgets.media.images import Region

        if region is not None and not isinstance(region, Region):
            raise InvalidArgumentError(
                f"--region must be text 'x1,y1,x2,y2' (or 'N:x1,y1,x2,y2' for the N-th image) "
                f"or a Region, not {type(region).__name__}."
            )


def check_load_call(
    source: Any,
    *,
    name: Any,
    engine: Any,
    device: Any,
    dtype: Any,
    allow_pickle: Any,
    trust_remote_code: Any,
    progress: Any,
    prepack: Any,
    max_images: Any,
    quantize: Any,
    compile: Any,
    cpu_kernels: Any = None,
) -> None:
    """The arguments of :func:`lmwidgets.load_model`."""
    path_like(source, "SOURCE", optional=True)
    model_name(name)
    plain_text(engine, "--engine", optional=False)
    plain_text(device, "--device", optional=False)
    plain_text(dtype, "--dtype", optional=False)
    flag(allow_pickle, "--allow-pickle")
    flag(trust_remote_code, "--trust-remote-code")
    flag(compile, "--compile")
    optional_flag(prepack, "prepack")
    callback(progress, "progress")
    optional_whole_number(max_images, "--max-images", minimum=1)
    plain_text(quantize, "--quantize")
    plain_text(cpu_kernels, "--cpu-kernels")


def check_engine_options(engine: str, options: Mapping[str, Any]) -> None:
    """Options of the engines that lmwidgets ships (``replies=`` of the scripted engine)."""
    if engine != "scripted" or "replies" not in options:
        return
    replies = options["replies"]
    if replies is None or callable(replies):
        return
    if not isinstance(replies, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in replies.items()
    ):
        raise InvalidArgumentError(
            "replies must map prompt text to answer text ({'capital': 'Paris', '*': 'fallback'}) "
            f"or be a function (prompt, adapter) -> answer, not {type(replies).__name__}."
        )


def check_connect_call(
    url: Any, *, name: Any, model: Any, api_key_env: Any, timeout: Any, concurrency: Any
) -> None:
    """The arguments of :func:`lmwidgets.connect`."""
    plain_text(url, "URL", optional=False)
    model_name(name)
    plain_text(model, "--model")
    plain_text(api_key_env, "--api-key-env")
    if api_key_env is not None and not api_key_env.strip():
        raise InvalidArgumentError("--api-key-env is empty: name the environment variable.")
    positive_number(timeout, "--timeout")
    whole_number(concurrency, "concurrency", minimum=1, maximum=1024)


def check_adapter_call(path: Any, *, name: Any, model: Any, scale: Any, allow_pickle: Any) -> None:
    """The arguments of :func:`lmwidgets.load_adapter`."""
    path_like(path, "PATH")
    plain_text(name, "--as")
    plain_text(model, "--model")
    finite(scale, "--scale")
    flag(allow_pickle, "--allow-pickle")


def check_training_call(
    output_dir: Any,
    *,
    model: Any,
    rank: Any,
    alpha: Any,
    targets: Any,
    layers: Any,
    steps: Any,
    learning_rate: Any,
    system: Any,
    seed: Any,
) -> None:
    """The arguments of :func:`lmwidgets.train_lora` (besides its examples)."""
    path_like(output_dir, "output_dir")
    plain_text(model, "model")
    whole_number(rank, "rank", minimum=1, maximum=4096)
    if alpha is not None:
        positive_number(alpha, "alpha")
    if isinstance(targets, str) or not isinstance(targets, (list, tuple)) or not targets:
        raise InvalidArgumentError(
            "targets must be a non-empty list of module names, e.g. ('q_proj', 'v_proj')."
        )
    for target in targets:
        plain_text(target, "targets item", optional=False)
    if layers is not None:
        if not isinstance(layers, (list, tuple)) or not layers:
            raise InvalidArgumentError("layers must be a non-empty list of layer numbers or None.")
        for layer in layers:
            whole_number(layer, "layers item", minimum=0, maximum=1_000_000)
    whole_number(steps, "steps", minimum=1, maximum=MAX_TRAINING_STEPS)
    if not finite_number(learning_rate) or not 0 < learning_rate <= 1:
        raise InvalidArgumentError(f"learning_rate must be in (0, 1], not {shown(learning_rate)}.")
    if system is not None and not isinstance(system, str):
        raise InvalidArgumentError(f"system must be text, not {type(system).__name__}.")
    whole_number(seed, "seed", minimum=0, maximum=MAX_INT64)


__all__ = [
    "MAX_COLUMNS",
    "MAX_ROWS",
    "MAX_SAMPLES",
    "check_adapter_call",
    "check_connect_call",
    "check_load_call",
    "check_prompt_call",
    "check_run_size",
    "check_samples",
    "check_training_call",
    "clean_prompt_text",
    "clean_variants",
    "out_name",
    "plain_text",
]
