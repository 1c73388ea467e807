"""Run records: exactly what ran, saved with every output and readable back from notebooks.

Token details (``--logprobs K``) are kept *bounded* so that saved notebooks stay small: a
record's ``output.tokens_detail`` holds at most :data:`MAX_RECORD_TOKENS` (2,000) tokens, each
with at most :data:`MAX_RECORD_ALTERNATIVES` (5) alternatives, log-probabilities rounded to
:data:`LOGPROB_DIGITS` (4) decimals (:func:`bounded_tokens`). Tokens beyond the limit are
counted in ``output.tokens_truncated``; alternatives cut from ``K`` to 5 are noted in
``output.tokens_top_kept``. :attr:`Result.tokens_detail <lmwidgets.core.results.Result>` in the
kernel keeps everything. A token a structured-answer constraint forced carries
``"forced": true``. ``output.confidence`` (the answer's probability, or a
self-consistency vote share) is rounded to 4 decimals. A fork's record has a ``fork`` mapping
(:mod:`lmwidgets.run.fork`). A dataset item's record has ``item_index`` (its number, the grid's
row: items may ask the same question of different images). Records without these fields
(older runs, runs without ``--logprobs``) are read as before.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from lmwidgets.checks import finite_number, shown, whole_number
from lmwidgets.errors import InvalidArgumentError, RecordError

#: The MIME type under which ``%%prompt`` outputs store their run records.
RECORD_MIME = "application/vnd.lmwidgets.run+json"
RECORD_SCHEMA = 1
#: The version of one run record's shape: 2 names the engine (``model.engine``) and holds the
#: prompt's media as ``prompt.media`` (each with its ``kind``); 1 held ``prompt.images``.
RUN_RECORD_SCHEMA = 2

#: Most tokens a record's ``output.tokens_detail`` keeps (the rest are counted, not kept).
MAX_RECORD_TOKENS = 2_000
#: Most alternatives per token a record keeps (``Result.tokens_detail`` keeps all ``K``).
MAX_RECORD_ALTERNATIVES = 5
#: Decimals a record keeps of each log-probability.
LOGPROB_DIGITS = 4


def bounded_tokens(tokens: Any) -> dict[str, Any]:
    """A record's token fields from a column's full ``tokens_detail``: ``tokens_detail`` (at
    most :data:`MAX_RECORD_TOKENS`, each with at most :data:`MAX_RECORD_ALTERNATIVES`
    alternatives, log-probabilities rounded), plus ``tokens_truncated`` (tokens left out) and
    ``tokens_top_kept`` (alternatives kept per token) only when something was cut."""
    tokens = list(tokens)
    kept = [
        {
            "text": token["text"],
            "id": token["id"],
            "logprob": _rounded(token["logprob"]),
            "top": [
                {"text": alt["text"], "id": alt["id"], "logprob": _rounded(alt["logprob"])}
                for alt in token["top"][:MAX_RECORD_ALTERNATIVES]
            ],
            **({"forced": True} if token.get("forced") else {}),
        }
        for token in tokens[:MAX_RECORD_TOKENS]
    ]
    fields: dict[str, Any] = {"tokens_detail": kept}
    if len(tokens) > MAX_RECORD_TOKENS:
        fields["tokens_truncated"] = len(tokens) - MAX_RECORD_TOKENS
    if any(len(token["top"]) > MAX_RECORD_ALTERNATIVES for token in tokens):
        fields["tokens_top_kept"] = MAX_RECORD_ALTERNATIVES
    return fields


def _rounded(logprob: Any) -> float:
    """A log-probability rounded for a record (-inf, for a token the model ruled out, is kept
    as a large negative number: JSON has no infinity)."""
    value = float(logprob)
    return round(value, LOGPROB_DIGITS) if value > -1e9 else -1e9


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


def records(source: Any) -> list[dict[str, Any]]:
    """Every run record saved in a notebook (a path or a loaded notebook dict), in cell order.

    Each record says which model (source, weights hash), adapter, strategy, exact prompt,
    generation settings (with the seed), library versions, device and dtype produced a text.
    The other forms records come in (a ``Comparison``, its JSON export, a list of records...)
    are read too: see :func:`load_records`.
    """
    return load_records(source)


def load_records(source: Any) -> list[dict[str, Any]]:
    """The run records of ``source``, in order, in any form lmwidgets writes or a user hands over:

    - a notebook: a path to an ``.ipynb`` file or a loaded notebook dict (records of every output);
    - a ``Comparison`` or a ``Result``;
    - a ``Comparison``'s JSON (``Comparison.to_json()``): the string, or a path to a file with it;
    - a list of records, or its JSON (string or file);
    - the payload stored under :data:`RECORD_MIME` (``{"schema": 1, "records": [...]}``);
    - a single record dict.

    Anything else raises :class:`RecordError`. The records are returned as read; check them with
    :func:`validate_records` before acting on them.
    """
    from lmwidgets.core.results import Comparison, Result

    if isinstance(source, Comparison):
        return list(source.records)
    if isinstance(source, Result):
        return [source.record]
    if isinstance(source, str) and source.lstrip()[:1] in ("{", "["):
        try:
            data = json.loads(source)
        except ValueError as exc:
            raise RecordError(f"Cannot read records from the JSON text given: {exc}") from exc
        return _records_in(data, "the JSON text given")
    if isinstance(source, (str, Path)):
        return _records_in(_read_json(Path(source)), repr(str(source)))
    return _records_in(source, "the value given")


def _read_json(path: Path) -> Any:
    what = "notebook" if path.suffix == ".ipynb" else "records file"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"No {what} at {str(path)!r}.") from None
    except (OSError, ValueError) as exc:
        raise RecordError(f"Cannot read {str(path)!r} as a {what}: {exc}") from exc


_MISSING = object()


def _shown(value: Any) -> str:
    """A value for an error message: its type and (the start of) its repr."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "None"
    try:
        return f"{type(value).__name__} {value!r:.60}"
    except Exception:  # a user's object with a broken __repr__
        return type(value).__name__


#: Keys that make a dict a run record (rather than a notebook, a Comparison export...).
_RECORD_KEYS = ("prompt", "model", "generation", "output")


def _records_in(data: Any, where: str) -> list[dict[str, Any]]:
    """The records held by ``data`` (parsed JSON or a Python value); ``where`` names it."""
    if isinstance(data, list):
        strays = [i for i, item in enumerate(data) if not isinstance(item, dict)]
        if strays:
            stray = data[strays[0]]
            raise RecordError(
                f"Item {strays[0]} of {where} is not a run record (a dict) but "
                f"{_shown(stray)}: a list of records holds only records."
            )
        return list(data)
    if isinstance(data, dict):
        if "cells" in data:
            return _notebook_records(data, where)
        if "results" in data:
            return _comparison_records(data, where)
        if "records" in data:
            payload = data["records"]
            if not isinstance(payload, list):
                raise RecordError(
                    f"Cannot read records from {where}: its 'records' is {_shown(payload)}, "
                    "not a list."
                )
            return _records_in(payload, where)
        if any(key in data for key in _RECORD_KEYS):
            return [data]
    raise RecordError(
        f"Cannot find run records in {where}: give a notebook (path or dict), a Comparison, its "
        "JSON (Comparison.to_json(), or a .json file with it), a list of records or one record, "
        f"not {_shown(data)}."
    )


def _notebook_records(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    cells = data["cells"]
    if not isinstance(cells, list):
        raise RecordError(
            f"Cannot read records from {where}: its 'cells' is {_shown(cells)}, not a list of "
            "notebook cells."
        )
    found: list[dict[str, Any]] = []
    for cell in cells:
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            bundle = output.get("data") if isinstance(output, dict) else None
            payload = bundle.get(RECORD_MIME) if isinstance(bundle, dict) else None
            if isinstance(payload, str):
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            if isinstance(payload, dict) and isinstance(payload.get("records"), list):
                found.extend(r for r in payload["records"] if isinstance(r, dict))
    return found


def _comparison_records(data: dict[str, Any], where: str) -> list[dict[str, Any]]:
    results = data["results"]
    if not isinstance(results, list):
        raise RecordError(
            f"Cannot read records from {where}: its 'results' is {_shown(results)}, not the "
            "list of a Comparison export."
        )
    found = []
    for index, result in enumerate(results):
        record = result.get("record") if isinstance(result, dict) else None
        if not isinstance(record, dict):
            raise RecordError(
                f"Cannot read records from {where}: result {index} of the Comparison export "
                "has no record (a dict)."
            )
        found.append(record)
    return found


# Validation ----------------------------------------------------------------------------------
#: Run record schemas this version reads (1: ``prompt.images``, before engines; 2: the current
#: one). A record without ``schema`` is read as the current one.
RUN_RECORD_SCHEMAS = (1, RUN_RECORD_SCHEMA)


class _Fields:
    """Field checks for one record; a failure is a :class:`RecordError` naming the record (its
    position and variant) and the field's path (``prompt.messages[1].role``)."""

    def __init__(self, label: str) -> None:
        self.label = label

    def error(self, path: str, problem: str) -> RecordError:
        return RecordError(f"{self.label} is malformed: {path} {problem}; it cannot be re-run.")

    def mapping(self, parent: dict, key: str, path: str, optional: bool = False) -> dict | None:
        value = parent.get(key, _MISSING)
        if optional and (value is _MISSING or value is None):
            return None
        if not isinstance(value, dict):
            raise self.error(path, f"must be a mapping, not {_shown(value)}")
        return value

    def string(
        self,
        parent: dict,
        key: str,
        path: str,
        required: bool = False,
        choices: tuple[str, ...] = (),
    ) -> str | None:
        value = parent.get(key, _MISSING)
        if not required and (value is _MISSING or value is None):
            return None
        if not isinstance(value, str) or (required and not value):
            wanted = "a non-empty string" if required else "a string or null"
            raise self.error(path, f"must be {wanted}, not {_shown(value)}")
        if choices and value not in choices:
            raise self.error(
                path, f"is {value!r}, which this lmwidgets does not know ({', '.join(choices)})"
            )
        return value

    def whole(
        self,
        parent: dict,
        key: str,
        path: str,
        minimum: int,
        required: bool = False,
        null: bool = False,
    ) -> None:
        value = parent.get(key, _MISSING)
        if (value is _MISSING and not required) or (value is None and null):
            return
        try:
            whole_number(value, path, minimum=minimum)
        except InvalidArgumentError:
            raise self.error(
                path, f"must be a whole number >= {minimum}, not {_shown(value)}"
            ) from None

    def number(
        self,
        parent: dict,
        key: str,
        path: str,
        *,
        above: float | None = None,
        at_least: float | None = None,
        at_most: float | None = None,
    ) -> None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return
        fits = finite_number(value) and not (
            (above is not None and value <= above)
            or (at_least is not None and value < at_least)
            or (at_most is not None and value > at_most)
        )
        if not fits:
            span = " and ".join(
                f"{sign} {bound:g}"
                for sign, bound in ((">", above), (">=", at_least), ("<=", at_most))
                if bound is not None
            )
            raise self.error(path, f"must be a number {span}, not {_shown(value)}")

    def mappings(self, parent: dict, key: str, path: str) -> list[dict]:
        value = parent.get(key, _MISSING)
        if value is _MISSING or value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"must be a list, not {_shown(value)}")
        for index, item in enumerate(value):
            if not isinstance(item, dict):
                raise self.error(f"{path}[{index}]", f"must be a mapping, not {_shown(item)}")
        return value


def validate_record(record: Any, index: int | None = None) -> None:
    """Check every field :func:`lmwidgets.rerun` reads from a record, loading nothing.

    Raises :class:`RecordError` naming the record (``index``, its variant) and the first field
    that is missing or of the wrong type. The rules are listed in :func:`validate_records`.
    """
    label = "The record" if index is None else f"Record {index}"
    variant = record.get("variant") if isinstance(record, dict) else None
    if isinstance(variant, str):
        label += f" ({variant!r})"
    if not isinstance(record, dict):
        raise RecordError(f"{label} is a {type(record).__name__}, not a run record (a dict).")
    schema = record.get("schema", RUN_RECORD_SCHEMA)
    if isinstance(schema, bool) or schema not in RUN_RECORD_SCHEMAS:
        raise RecordError(
            f"{label} has schema {shown(schema)}, which this lmwidgets does not read (it reads "
            f"{', '.join(map(str, RUN_RECORD_SCHEMAS))}); was it written by a newer lmwidgets?"
        )
    fields = _Fields(label)
    fields.string(record, "run", "run")
    fields.string(record, "variant", "variant")
    _check_model(fields, record)
    adapter = fields.mapping(record, "adapter", "adapter", optional=True)
    if adapter is not None:
        fields.string(adapter, "name", "adapter.name", required=True)
    _check_strategy(fields, record)
    _check_prompt(fields, record)
    _check_generation(fields, record)
    fields.mapping(record, "input", "input", optional=True)
    fields.whole(record, "item_index", "item_index", 0, null=True)
    output = fields.mapping(record, "output", "output")
    if not isinstance(output.get("text", _MISSING), str):
        raise fields.error(
            "output.text", f"must be a string, not {_shown(output.get('text', _MISSING))}"
        )
    if not isinstance(output.get("text_truncated", False), bool):
        raise fields.error(
            "output.text_truncated",
            f"must be true or false, not {_shown(output['text_truncated'])}",
        )
    fields.string(output, "answer", "output.answer")
    _check_tokens(fields, output)
    fields.mapping(record, "versions", "versions", optional=True)
    _check_scoring(fields, record)
    _check_fork(fields, record)
    _check_choices(fields, record)


def _check_choices(fields: _Fields, record: dict) -> None:
    """Given choices (``record["choices"]``, see :mod:`lmwidgets.run.choices`): ``options``
    a list of strings and ``logprobs`` as many numbers."""
    choices = fields.mapping(record, "choices", "choices", optional=True)
    if choices is None:
        return
    options, logprobs = choices.get("options"), choices.get("logprobs")
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise fields.error("choices.options", f"must be a list of strings, not {_shown(options)}")
    if (
        not isinstance(logprobs, list)
        or len(logprobs) != len(options)
        or not all(finite_number(v) for v in logprobs)
    ):
        raise fields.error(
            "choices.logprobs", f"must be one number per choice, not {_shown(logprobs)}"
        )


def _token_id(fields: _Fields, value: Any, path: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise fields.error(
            path, f"must be a token id (a whole number >= 0) or null, not {_shown(value)}"
        )


def _check_token(fields: _Fields, token: dict, path: str) -> None:
    if not isinstance(token.get("text", _MISSING), str):
        raise fields.error(
            f"{path}.text", f"must be a string, not {_shown(token.get('text', _MISSING))}"
        )
    _token_id(fields, token.get("id"), f"{path}.id")
    if not isinstance(token.get("forced", False), bool):
        raise fields.error(
            f"{path}.forced", f"must be true or false, not {_shown(token['forced'])}"
        )
    logprob = token.get("logprob", _MISSING)
    if not finite_number(logprob) or logprob > 1e-6:
        raise fields.error(f"{path}.logprob", f"must be a number <= 0, not {_shown(logprob)}")


def _check_tokens(fields: _Fields, output: dict) -> None:
    """The token fields of ``--logprobs`` runs (absent in older records and runs without it):
    rerun does not read them, but the static copy and the widget show them."""
    for index, token in enumerate(fields.mappings(output, "tokens_detail", "output.tokens_detail")):
        path = f"output.tokens_detail[{index}]"
        _check_token(fields, token, path)
        for number, alt in enumerate(fields.mappings(token, "top", f"{path}.top")):
            _check_token(fields, alt, f"{path}.top[{number}]")
    fields.whole(output, "tokens_truncated", "output.tokens_truncated", 0)
    fields.whole(output, "tokens_top_kept", "output.tokens_top_kept", 1)
    if output.get("confidence") is not None:
        fields.number(output, "confidence", "output.confidence", at_least=0, at_most=1)


def _check_fork(fields: _Fields, record: dict) -> None:
    """A fork's record (:mod:`lmwidgets.run.fork`): what rerun needs to force the same start."""
    fork = fields.mapping(record, "fork", "fork", optional=True)
    if fork is None:
        return
    fields.string(fork, "from", "fork.from")
    fields.whole(fork, "position", "fork.position", 0, required=True)
    forced = fields.mapping(fork, "forced", "fork.forced")
    _token_id(fields, forced.get("id"), "fork.forced.id")
    if not isinstance(forced.get("text", _MISSING), str):
        raise fields.error(
            "fork.forced.text", f"must be a string, not {_shown(forced.get('text', _MISSING))}"
        )
    prefix = fork.get("prefix_ids", [])
    if not isinstance(prefix, list):
        raise fields.error("fork.prefix_ids", f"must be a list of token ids, not {_shown(prefix)}")
    for index, value in enumerate(prefix):
        _token_id(fields, value, f"fork.prefix_ids[{index}]")
    if not isinstance(fork.get("prefix_text", ""), str):
        raise fields.error(
            "fork.prefix_text", f"must be a string, not {_shown(fork['prefix_text'])}"
        )


def _check_scoring(fields: _Fields, record: dict) -> None:
    """The scoring fields (absent in records older than scorers, and in runs without a
    dataset): ``rerun`` scores again with the recorded scorer."""
    from lmwidgets.errors import LmWidgetsError
    from lmwidgets.prompting.scoring import check_recorded_spec

    fields.string(record, "expected", "expected")
    for key in ("compared", "score_error"):
        fields.string(record, key, key)
    if record.get("score") is not None:
        fields.number(record, "score", "score", at_least=0, at_most=1)
    correct = record.get("correct")
    if correct is not None and not isinstance(correct, bool):
        raise fields.error("correct", f"must be true, false or null, not {_shown(correct)}")
    spec = fields.string(record, "scorer", "scorer")
    if spec is not None:
        try:
            check_recorded_spec(spec)
        except LmWidgetsError as exc:
            raise fields.error("scorer", f"is {spec!r}, which cannot score again ({exc})") from None


def _check_model(fields: _Fields, record: dict) -> None:
    model = fields.mapping(record, "model", "model")
    for key in ("engine", "name", "source", "weights_sha256", "device", "dtype"):
        fields.string(model, key, f"model.{key}")
    # In-kernel models are found by their weights or loaded from their source; other engines'
    # models (scripted, served) are found among the loaded ones by their weights or name.
    keys = (
        ("source", "weights_sha256")
        if model.get("engine") in (None, "transformers")
        else ("weights_sha256", "name")
    )
    if not any(model.get(key) for key in keys):
        raise fields.error("model", f"names no model to run on (no {' or '.join(keys)})")


def _check_strategy(fields: _Fields, record: dict) -> None:
    from lmwidgets.prompting.strategies import strategy_names

    strategy = fields.mapping(record, "strategy", "strategy")
    fields.string(strategy, "name", "strategy.name", required=True, choices=strategy_names())


def _check_prompt(fields: _Fields, record: dict) -> None:
    prompt = fields.mapping(record, "prompt", "prompt")
    messages = fields.mappings(prompt, "messages", "prompt.messages")
    if not messages:
        raise fields.error(
            "prompt.messages",
            f"must be a non-empty list of {{role, content}}, not {_shown(prompt.get('messages', _MISSING))}",
        )
    for index, message in enumerate(messages):
        path = f"prompt.messages[{index}]"
        fields.string(message, "role", f"{path}.role", required=True)
        content = message.get("content", _MISSING)
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            raise fields.error(
                f"{path}.content", f"must be a string or a list of parts, not {_shown(content)}"
            )
        parts = fields.mappings(message, "content", f"{path}.content")
        for number, part in enumerate(parts):
            kind = fields.string(part, "type", f"{path}.content[{number}].type", required=True)
            text = part.get("text", _MISSING)
            if kind == "text" and not isinstance(text, str):
                raise fields.error(
                    f"{path}.content[{number}].text", f"must be a string, not {_shown(text)}"
                )
    fields.string(prompt, "template", "prompt.template")
    fields.string(prompt, "rendered", "prompt.rendered")
    for key in ("media", "images"):  # schema 2 / schema 1
        for index, entry in enumerate(fields.mappings(prompt, key, f"prompt.{key}")):
            _check_media_entry(fields, entry, f"prompt.{key}[{index}]")


def _media_kinds() -> tuple[str, ...]:
    from lmwidgets.media.base import all_kinds

    return tuple(sorted(kind.name for kind in all_kinds()))


def _check_media_entry(fields: _Fields, entry: dict, path: str) -> None:
    fields.string(entry, "kind", f"{path}.kind", choices=_media_kinds())
    fields.string(entry, "sha256", f"{path}.sha256", required=True)
    for key in ("name", "source", "location", "bytes_sha256"):
        fields.string(entry, key, f"{path}.{key}")
    region = entry.get("region")
    pixels = isinstance(region, list) and len(region) == 4
    if region is not None and not (
        pixels and all(finite_number(v) and v == int(v) and v >= 0 for v in region)
    ):
        raise fields.error(
            f"{path}.region", f"must be [x1, y1, x2, y2] in whole pixels, not {_shown(region)}"
        )
    fields.string(entry, "region_mode", f"{path}.region_mode", choices=("box", "crop"))


def _check_generation(fields: _Fields, record: dict) -> None:
    generation = fields.mapping(record, "generation", "generation")
    fields.whole(generation, "max_new_tokens", "generation.max_new_tokens", 1, required=True)
    fields.number(generation, "temperature", "generation.temperature", at_least=0)
    fields.number(generation, "top_p", "generation.top_p", above=0, at_most=1)
    fields.whole(generation, "seed", "generation.seed", 0, null=True)
    fields.whole(generation, "samples", "generation.samples", 1)
    fields.whole(generation, "batch_size", "generation.batch_size", 1)
    from lmwidgets.engines.base import MAX_LOGPROBS

    logprobs = generation.get("logprobs", 0)
    if (
        isinstance(logprobs, bool)
        or not isinstance(logprobs, int)
        or not 0 <= logprobs <= MAX_LOGPROBS
    ):
        raise fields.error(
            "generation.logprobs",
            f"must be a whole number from 0 to {MAX_LOGPROBS}, not {_shown(logprobs)}",
        )


def validate_records(records: list[Any]) -> list[dict[str, Any]]:
    """Check every record (:func:`validate_record`, each named by its position) and return them.

    The rules (fields :func:`lmwidgets.rerun` reads; others are not looked at):

    - the record is a dict; ``schema``, when present, is one of :data:`RUN_RECORD_SCHEMAS`;
    - ``model`` is a mapping; its ``engine``, ``name``, ``source``, ``weights_sha256``,
      ``device`` and ``dtype`` are strings or null; it names a model: a ``source`` or
      ``weights_sha256`` (in-kernel models), a ``weights_sha256`` or ``name`` (other engines);
    - ``adapter`` is null or a mapping with a ``name``;
    - ``strategy`` is a mapping whose ``name`` is a known strategy;
    - ``prompt`` is a mapping; ``messages`` a non-empty list of mappings with a ``role`` string
      and a ``content`` string or list of parts (mappings with a ``type``; ``text`` parts with a
      ``text`` string); ``template`` and ``rendered`` strings or null; ``media`` (schema 2)
      and ``images`` (schema 1) null or lists of mappings with a known ``kind`` (default
      ``image``), a ``sha256``, string ``name``/``source``/``location``, a ``region`` of four
      whole pixels and a ``region_mode`` of ``box`` or ``crop``;
    - ``generation`` is a mapping: ``max_new_tokens`` a whole number >= 1; ``temperature`` a
      number >= 0; ``top_p`` in (0, 1]; ``seed`` null or a whole number >= 0; ``samples`` and
      ``batch_size`` whole numbers >= 1 (each optional but ``max_new_tokens``); ``logprobs``
      (optional) a whole number from 0 to 20;
    - ``input`` is null or a mapping (the dataset item); ``item_index`` (optional; records
      before it have none) null or a whole number >= 0 (the item's number, its grid row);
      ``output`` a mapping with a string
      ``text``, a boolean ``text_truncated`` and a string or null ``answer``;
    - ``run`` and ``variant`` are strings or null; ``versions`` null or a mapping;
    - ``expected``, ``compared`` and ``score_error`` are strings or null; ``score`` null or a
      number in 0..1; ``correct`` true, false or null; ``scorer`` null or a scorer spec this
      lmwidgets knows (:mod:`lmwidgets.prompting.scoring`; ``callable:NAME`` for a function).
      All are optional: records written before scorers have none of them.
    - ``output.tokens_detail`` (optional) is a list of tokens: a ``text`` string, an ``id``
      (whole number or null), a ``logprob`` number <= 0 and a ``top`` list of the same;
      ``output.tokens_truncated`` a whole number >= 0, ``output.tokens_top_kept`` >= 1,
      ``output.confidence`` null or a number in 0..1;
    - ``fork`` (optional) is a mapping: ``from`` a string, ``position`` a whole number >= 0,
      ``forced`` a mapping with an ``id`` (token id or null) and a ``text`` string,
      ``prefix_ids`` a list of token ids (or nulls), ``prefix_text`` a string.
    """
    for index, record in enumerate(records):
        validate_record(record, index)
    return records
