"""Property-based fuzzing of the Python API (issue 17): ``prompt``, ``load_model``, ``connect``,
``load_adapter``, ``rerun``, ``records`` and ``train_lora`` with generated arguments, good and
bad (wrong types, NaN, huge integers, lone surrogates, unknown options, broken records). Each call
returns its result or raises an :class:`LmWidgetsError` whose message can be shown, never another
exception, and the loaded models and earlier results keep working.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import lmwidgets
from lmwidgets import RECORD_MIME
from lmwidgets.engines.base import StopSignal

#: ``LMWIDGETS_FUZZ_SCALE=20`` runs twenty times the examples (a longer hunt for bugs).
SCALE = float(os.environ.get("LMWIDGETS_FUZZ_SCALE", "1"))
SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
SCRIPTED = ("fz", "fz_loud", "fz_eye")

# -- values ----------------------------------------------------------------------------------
ANY_CHAR = st.characters(exclude_categories=())
texts = st.text(ANY_CHAR, max_size=12)


class BrokenRepr:
    """A user's object whose ``repr``/``str``/``format`` fail (hypothesis shows it by name)."""

    def _fail(self, *args):
        raise ValueError("broken repr")

    __str__ = __format__ = _fail

    def __repr__(self):
        import inspect

        if any("hypothesis" in frame.filename for frame in inspect.stack()[1:3]):
            return "BrokenRepr()"
        raise ValueError("broken repr")


OBJECTS = [
    object(),
    Path("/no/such/path"),
    b"",
    (),
    {},
    [],
    float("nan"),
    print,
    StopSignal(),
    BrokenRepr(),
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63) - 1, 10**20]),
    st.floats(allow_nan=True, allow_infinity=True),
    texts,
    st.binary(max_size=4),
    st.sampled_from(OBJECTS),
)
anything = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner, inner),
        st.dictionaries(
            st.one_of(texts, st.sampled_from(["input", "output", "expected"])), inner, max_size=3
        ),
    ),
    max_leaves=6,
)


def good_or_any(*good):
    """One of the ``good`` values or anything at all."""
    return st.one_of(st.sampled_from(good), anything)


@st.composite
def one_fault(draw, good, *, arguments=(), unknown=False):
    """Keyword arguments drawn from ``good`` (a strategy of sensible values per name), then, in
    most examples, exactly one of them set to anything: a single bad value reaches the code
    behind the checks of all the others. ``arguments`` are always present. ``unknown``: the
    function takes ``**options``, so an unknown name may be the bad one (elsewhere Python's own
    TypeError answers it)."""
    optional = sorted(name for name in good if name not in arguments)
    chosen = draw(st.lists(st.sampled_from(optional), max_size=4, unique=True))
    for pair in CONFLICTS:  # sensible values do not contradict each other
        if set(pair) <= set(chosen):
            chosen.remove(pair[1])
    options = {name: draw(good[name]) for name in [*arguments, *chosen]}
    if draw(st.integers(0, 3)) == 2:
        return options
    name = draw(st.sampled_from([*sorted(good), *(["?"] if unknown else [])]))
    if name == "?":
        name = draw(texts.filter(lambda key: key not in good and key not in RESERVED))
    options[name] = draw(anything)
    return options


#: Options that cannot be given together (the second is dropped from sensible values).
CONFLICTS = [("model", "models"), ("strategy", "compare"), ("adapter", "adapters")]
#: Names a fuzzed keyword must not take (Python's own TypeError for a repeated argument).
RESERVED = ("text", "registry", "source", "url", "path", "examples", "output_dir")
strategy_names = ["zero-shot", "few-shot", "cot", "self-consistency", "no-image"]
model_names = [*SCRIPTED, "nobody"]
PAIRS = [("2+2", "4"), ("3+3", "6")]
DATA = [{"input": "2+2", "expected": "4"}, {"input": "\udcff\x00?", "expected": 5}]
IMAGE = object()  # stands for a PIL image (made in the test)


def _image():
    from PIL import Image

    return Image.new("RGB", (32, 24), "red")


def joined(names):
    return st.lists(st.sampled_from(names), max_size=3).map(",".join)


PROMPT_GOOD = {
    "text": st.one_of(texts.map(lambda t: t + " {x} {n} {img}"), st.just("What is 2 + 2?")),
    "model": st.sampled_from(model_names),
    "system": texts,
    "max_new_tokens": st.integers(1, 6),
    "temperature": st.sampled_from([0.0, 0.7]),
    "top_p": st.sampled_from([1.0, 0.9]),
    "seed": st.integers(0, 3),
    "logprobs": st.integers(0, 5),
    "variables": st.just({"x": "\udcff", "n": 3}),
    "display": st.just(False),
    "stop": st.builds(StopSignal),
    "confirm": st.booleans(),
    "strategy": st.sampled_from(strategy_names),
    "compare": st.one_of(joined(strategy_names), st.lists(st.sampled_from(strategy_names))),
    "examples": st.just(PAIRS),
    "shots": st.integers(0, 3),
    "samples": st.integers(1, 70),
    "dataset": st.one_of(
        st.just(DATA),
        st.lists(
            st.dictionaries(st.sampled_from(["input", "expected", "x"]), st.one_of(texts, scalars)),
            max_size=3,
        ),
    ),
    "templates": st.dictionaries(
        st.sampled_from(["cot_instruction", "sc_temperature", "plain_query"]),
        st.one_of(texts, st.floats(0.1, 2)),
        max_size=2,
    ),
    "batch_size": st.integers(1, 20),
    "adapter": st.sampled_from(["loud", "base", "nobody"]),
    "adapters": joined(["base", "loud", "nobody"]),
    "images": st.one_of(st.just(IMAGE), st.lists(st.just(IMAGE), max_size=3)),
    "region": st.sampled_from(["1,1,10,10", "2:0,0,5,5", "9,9,1,1", "0,0,32,24"]),
    "region_mode": st.sampled_from(["box", "crop"]),
    "models": joined(model_names),
}


# -- the kernel state ----------------------------------------------------------------------------
@pytest.fixture
def scripted(registry):
    """Three scripted models (plain, with an adapter, taking images) and an earlier result."""
    lmwidgets.load_model(engine="scripted", name="fz", replies={"*": "The answer is: 4"})
    lmwidgets.load_model(engine="scripted", name="fz_loud", adapters={"loud": str.upper})
    lmwidgets.load_model(engine="scripted", name="fz_eye", media=("image",), max_media=2)
    registry.current = "fz"
    return lmwidgets.prompt("What is 2 + 2?", model="fz", display=False)


def _shown(error: BaseException) -> None:
    """An error's message can be printed and sent by a kernel (valid UTF-8)."""
    str(error).encode("utf-8")


def call(function, *args, **kwargs):
    """``function(*args, **kwargs)``: its result, or None after an LmWidgetsError."""
    try:
        return function(*args, **kwargs)
    except lmwidgets.LmWidgetsError as exc:
        _shown(exc)
        return None


def intact(before, names=SCRIPTED):
    """The earlier result and every model still work."""
    assert before[0].text == "The answer is: 4"
    for name in names:
        assert name in lmwidgets.REGISTRY
    for name in names:
        result = lmwidgets.prompt("hi", model=name, display=False, max_new_tokens=3)
        assert isinstance(result, lmwidgets.Comparison)


def _comparison_ok(result) -> None:
    assert isinstance(result, lmwidgets.Comparison)
    for item in result:
        (item.text + item.prompt + " ".join(result.notes)).encode("utf-8")
    result.to_json()


# -- prompt ----------------------------------------------------------------------------------------
def test_prompt(scripted, capsys):
    image = _image()

    @settings(max_examples=int(300 * SCALE), **SETTINGS)
    @given(options=one_fault(PROMPT_GOOD, arguments=("text", "display"), unknown=True))
    def fuzz(options):
        if options.get("images") is IMAGE:
            options["images"] = image
        elif isinstance(options.get("images"), list):
            options["images"] = [image if i is IMAGE else i for i in options["images"]]
        text = options.pop("text")
        result = call(lmwidgets.prompt, text, **options)
        if result is not None:
            _comparison_ok(result)
        assert scripted[0].text == "The answer is: 4"

    fuzz()
    capsys.readouterr()
    intact(scripted)


def test_prompt_on_a_tiny_transformers_model(scripted, tiny, capsys):
    """Fewer examples on a real tokenizer: text with any characters, small budgets."""

    @settings(max_examples=int(25 * SCALE), **SETTINGS)
    @given(
        text=st.one_of(texts.map(lambda t: t + " {x}"), anything),
        system=st.one_of(st.none(), texts),
        samples=st.one_of(st.none(), st.integers(1, 3), anything),
        strategy=good_or_any(*strategy_names),
    )
    def fuzz(text, system, samples, strategy):
        result = call(
            lmwidgets.prompt,
            text,
            model="tiny",
            system=system,
            samples=samples,
            strategy=strategy,
            examples=PAIRS,
            max_new_tokens=2,
            variables={"x": "\udcff\x00"},
            display=False,
        )
        if result is not None:
            _comparison_ok(result)

    fuzz()
    capsys.readouterr()
    intact(scripted, ("tiny", *SCRIPTED))


# -- loading -------------------------------------------------------------------------------------
_HUB_LIKE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@pytest.fixture
def paths(tmp_path, tiny_dir):
    replies = tmp_path / "replies.json"
    replies.write_text('{"*": "scripted"}', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not json", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    return [
        str(replies),
        str(tmp_path / "notes.txt"),
        str(tmp_path / "empty"),
        str(tiny_dir),
        "/no/such",
    ]


def test_load_model(scripted, paths, capsys):
    good = {
        "source": st.sampled_from([None, *paths]),
        "engine": st.sampled_from(["scripted", "transformers", "openai"]),
        "name": st.sampled_from(["fzx", "fz", "", "a b", "a,b", " x"]),
        "device": st.sampled_from(["cpu", "cuda", "tpu", "auto"]),
        "dtype": st.sampled_from(["float32", "bfloat16", "int3", "auto"]),
        "allow_pickle": st.booleans(),
        "trust_remote_code": st.just(False),
        "progress": st.just(lambda fraction, message: None),
        "prepack": st.sampled_from([None, False]),
        "max_images": st.sampled_from([None, 1]),
        "quantize": st.sampled_from([None, "4bit"]),
        "compile": st.booleans(),
        "replies": st.dictionaries(texts, texts, max_size=2),
    }

    @settings(max_examples=int(80 * SCALE), **SETTINGS)
    @given(options=one_fault(good, arguments=("source", "engine"), unknown=True))
    def fuzz(options):
        source, engine = options.pop("source"), options.pop("engine")
        # Never the network (hub ids, servers) nor the embedded default model (slow to load).
        text = source.strip() if isinstance(source, str) else ""
        if engine != "scripted":
            assume(source is not None and text not in ("", "default"))
            assume(not _HUB_LIKE.match(os.path.expanduser(text)) and "://" not in text)
        loaded = call(lmwidgets.load_model, source, engine=engine, **options)
        if loaded is None:
            return
        try:
            result = lmwidgets.prompt("hi", model=loaded.name, display=False, max_new_tokens=2)
            _comparison_ok(result)
            if loaded.name != "fz":  # reachable in a list of models too
                both = f"fz,{loaded.name}"
                result = lmwidgets.prompt("hi", models=both, display=False, max_new_tokens=2)
                assert [r.model for r in result] == ["fz", loaded.name]
        finally:  # the next example starts from the same models
            if loaded.name not in SCRIPTED:
                lmwidgets.unload_model(loaded.name)

    fuzz()
    capsys.readouterr()
    intact(scripted)


def test_connect(scripted, capsys):
    good = {
        "url": st.sampled_from(["http://127.0.0.1:9", "notaurl", "ftp://x", "http://"]),
        "name": st.sampled_from(["srv", "fz"]),
        "model": st.sampled_from(["m", None]),
        "api_key_env": st.sampled_from(["LMW_FZ_NO_SUCH_KEY", None]),
        "timeout": st.sampled_from([0.5, 1]),
        "concurrency": st.sampled_from([1, 4]),
    }

    @settings(max_examples=int(30 * SCALE), **SETTINGS)
    @given(options=one_fault(good, arguments=("url",)))
    def fuzz(options):
        url = options.pop("url")
        assume(not (isinstance(url, str) and "://" in url and "127.0.0.1:9" not in url))
        assert call(lmwidgets.connect, url, **options) is None  # nothing listens there

    fuzz()
    capsys.readouterr()
    intact(scripted)


def test_load_adapter(scripted, tiny, tiny_dir, tmp_path_factory, capsys):
    from tiny_models import build_lora

    lora = str(build_lora(tiny_dir, tmp_path_factory.mktemp("lora") / "lora", seed=1))
    good = {
        "path": st.sampled_from([lora, "/no/such", str(tiny_dir)]),
        "name": st.sampled_from(["style", "base", "", None]),
        "model": st.sampled_from(["tiny", "fz", "fz_loud", "nobody"]),
        "scale": st.sampled_from([1.0, 0.5, -1]),
        "allow_pickle": st.booleans(),
    }

    @settings(max_examples=int(40 * SCALE), **SETTINGS)
    @given(options=one_fault(good, arguments=("path",)))
    def fuzz(options):
        path = options.pop("path")
        info = call(lmwidgets.load_adapter, path, **options)
        if info is None:
            return
        try:
            result = lmwidgets.prompt(
                "hi",
                model=info.model,
                adapters=f"base,{info.name}",
                display=False,
                max_new_tokens=2,
            )
            _comparison_ok(result)
        finally:  # the next example starts from the same models
            lmwidgets.unload_adapter(info.name, model=info.model)

    fuzz()
    capsys.readouterr()
    intact(scripted, ("tiny", *SCRIPTED))


# -- records and rerun ------------------------------------------------------------------------------
#: Values at the edges of what records hold (sizes, seeds, budgets).
EDGES = st.sampled_from([2**63 - 1, 2**64, 10**7, 100, -1, 0, 1e308, "", "x", [], {}])


def mutated(records):
    """The records with one field (top level or one level down) replaced by anything or dropped."""

    @st.composite
    def build(draw):
        changed = copy.deepcopy(records)
        record = changed[draw(st.integers(0, len(changed) - 1))]
        key = draw(st.sampled_from(sorted(record)))
        target = record
        if isinstance(record[key], dict) and record[key] and draw(st.booleans()):
            target, key = record[key], draw(st.sampled_from(sorted(record[key])))
        if draw(st.booleans()):
            del target[key]
        else:
            target[key] = draw(st.one_of(anything, EDGES))
        return changed

    return build()


@st.composite
def deep_mutated(draw, value):
    """``value`` (nested dicts and lists) with one node anywhere replaced, dropped or given a
    new key: malformed notebooks and Comparison exports."""
    value = copy.deepcopy(value)
    parent, key = None, None
    node = value
    while isinstance(node, (dict, list)) and node and draw(st.integers(0, 4)) != 0:
        keys = sorted(node) if isinstance(node, dict) else list(range(len(node)))
        parent, key = node, draw(st.sampled_from(keys))
        node = parent[key]
    if parent is None:
        return draw(anything)
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "drop":
        del parent[key]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(texts)] = draw(anything)
    else:
        parent[key] = draw(st.one_of(anything, EDGES))
    return value


def test_rerun_and_records(scripted, tmp_path, capsys):
    import json

    sc = lmwidgets.prompt(
        "Pick one", model="fz", strategy="self-consistency", samples=3, seed=1, display=False
    )
    good = [*scripted.records, *sc.records]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text("{not json", encoding="utf-8")
    payload = {"schema": 1, "records": good}
    as_notebook = {
        "cells": [
            {
                "cell_type": "code",
                "source": "%%prompt\nWhat is 2 + 2?",
                "outputs": [{"output_type": "display_data", "data": {RECORD_MIME: payload}}],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    assert lmwidgets.rerun(as_notebook).matched
    exported = json.loads(sc.to_json())

    @settings(max_examples=int(150 * SCALE), **SETTINGS)
    @given(
        source=st.one_of(
            st.just(scripted),
            st.just(scripted.to_json()),
            mutated(good),
            mutated(good).map(
                lambda records: json.dumps(records, default=lambda o: type(o).__name__)
            ),
            st.just(str(notebook)),
            deep_mutated(as_notebook),
            deep_mutated(exported),
            deep_mutated(exported).map(
                lambda data: json.dumps(data, default=lambda o: type(o).__name__)
            ),
            anything,
        ),
        options=st.fixed_dictionaries(
            {},
            optional={
                "display": good_or_any(False),
                "images": anything,
                "namespace": anything,
                "confirm": good_or_any(False, True),
            },
        ),
    )
    def fuzz(source, options):
        found = call(lmwidgets.records, source)
        if found is not None:
            assert isinstance(found, list)
        report = call(lmwidgets.rerun, source, **options)
        if report is not None:
            str(report.summary()).encode("utf-8")

    fuzz()
    capsys.readouterr()
    intact(scripted)


# -- training ------------------------------------------------------------------------------------
def test_train_lora(scripted, tiny, tmp_path, capsys):
    good = {
        "examples": st.just(PAIRS),
        "output_dir": st.just(str(tmp_path / "out")),
        "model": st.sampled_from(["tiny", "fz", "nobody"]),
        "rank": st.sampled_from([2, 0]),
        "alpha": st.sampled_from([None, 4.0]),
        "targets": st.sampled_from([("q_proj",), ("nope",), []]),
        "layers": st.sampled_from([None, [0], [1], [99]]),
        "steps": st.sampled_from([1, 2, 0]),
        "learning_rate": st.sampled_from([1e-3, 0]),
        "system": texts,
        "seed": st.sampled_from([0, 2**64]),
    }

    @settings(max_examples=int(20 * SCALE), **SETTINGS)
    @given(options=one_fault(good, arguments=("examples", "output_dir", "steps")))
    def fuzz(options):
        steps = options["steps"]
        if isinstance(steps, int) and not isinstance(steps, bool) and 2 < steps <= 10_000:
            options["steps"] = 2  # valid step counts stay short
        examples, output = options.pop("examples"), options.pop("output_dir")
        call(lmwidgets.train_lora, examples, output, **options)

    fuzz()
    capsys.readouterr()
    intact(scripted, ("tiny", *SCRIPTED))
