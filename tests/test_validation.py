"""The validation layer (issue 17): its rules, and regression tests for what the fuzzing found
(``tests/test_fuzz_api.py``, ``tests/notebook/test_fuzz_magics.py``)."""

from __future__ import annotations

import copy

import pytest

import lmwidgets
from lmwidgets.errors import InvalidArgumentError, PromptError
from lmwidgets.validation import (
    MAX_COLUMNS,
    MAX_CONFIRMED_ROWS,
    MAX_ROWS,
    MAX_SAMPLES,
    clean_prompt_text,
    out_name,
    plain_text,
    printable,
)


@pytest.fixture
def fz(registry):
    return lmwidgets.load_model(engine="scripted", name="fz", replies={"*": "The answer is: 4"})


# -- text ------------------------------------------------------------------------------------
def test_prompt_text_keeps_newlines_and_replaces_what_no_tokenizer_reads():
    assert clean_prompt_text("a\n\tb\r\n", "The prompt") == ("a\n\tb\r\n", None)
    cleaned, note = clean_prompt_text("ok\nx\x00\x01\udcff", "The prompt")
    assert cleaned == "ok\nx\ufffd\ufffd\ufffd"
    assert "3 characters" in note and "line 2, column 2" in note
    for name in ("U+0000 (a control character)", "U+0001", "U+DCFF (a lone surrogate)"):
        assert name in note
    note.encode("utf-8")


def test_names_refuse_every_control_character_and_say_where():
    assert plain_text("tiny-1", "--model") == "tiny-1"
    for bad in ("a\x00", "a\nb", "\udcff", "x\t"):
        with pytest.raises(InvalidArgumentError, match="--model") as caught:
            plain_text(bad, "--model")
        str(caught.value).encode("utf-8")  # quoted with repr: printable
    with pytest.raises(InvalidArgumentError, match="must be text, not int"):
        plain_text(5, "--as")


def test_printable_escapes_but_keeps_lines():
    assert printable("a\udcff\x00\nb") == "a\\udcff\\x00\nb"


# -- --out -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("1bad-name", "not a Python name"),
        ("lmw fz", "not a Python name"),
        ("", "not a Python name"),
        ("for", "keyword"),
        ("__name__", "belong to Python"),
        ("print", "built-in 'print'"),
        ("_", "IPython's own names"),
        ("_12", "IPython's own names"),
        ("In", "IPython's own names"),
        ("data", "would replace the notebook variable 'data' (a list)"),
    ],
)
def test_out_names_that_are_refused(name, needle):
    with pytest.raises(InvalidArgumentError, match="--out") as caught:
        out_name(name, {"data": [1], "In": []})
    assert needle in str(caught.value)


def test_out_names_that_are_fine_and_force():
    earlier = lmwidgets.Comparison([])
    assert out_name("answer", {}) == "answer"
    assert out_name("match", {}) == "match"  # a soft keyword is a fine variable name
    assert out_name("cmp", {"cmp": earlier}) == "cmp"  # rebinding an earlier result
    assert out_name("print", {}, force=True) == "print"
    assert out_name("data", {"data": [1]}, force=True) == "data"
    with pytest.raises(InvalidArgumentError, match="keyword"):
        out_name("for", {}, force=True)  # never reachable, even when insisted on


# -- sizes -------------------------------------------------------------------------------------
def test_samples_beyond_the_limit_need_confirm(fz):
    with pytest.raises(InvalidArgumentError, match=r"--samples 1,000,000 .*even with --yes"):
        lmwidgets.prompt("q", strategy="self-consistency", samples=10**6, confirm=True)
    with pytest.raises(InvalidArgumentError, match=r"more than the 64 .*--yes") as caught:
        lmwidgets.prompt("q", strategy="self-consistency", samples=MAX_SAMPLES + 1)
    assert "confirm=True" in str(caught.value)
    assert not fz.calls  # refused before anything was generated
    result = lmwidgets.prompt(
        "q", strategy="self-consistency", samples=MAX_SAMPLES + 1, confirm=True, batch_size=64
    )
    assert len(result[0].extras["samples"]) == MAX_SAMPLES + 1


def test_rows_and_columns_beyond_the_limits_need_confirm(registry):
    engine = lmwidgets.load_model(
        engine="scripted", name="many", adapters={f"a{i}": str.upper for i in range(MAX_COLUMNS)}
    )
    adapters = ",".join(["base", *engine.adapters])
    with pytest.raises(InvalidArgumentError, match=f"{MAX_COLUMNS + 1} columns"):
        lmwidgets.prompt("q", adapters=adapters)
    result = lmwidgets.prompt("q", adapters=adapters, confirm=True, max_new_tokens=1)
    assert len(result) == MAX_COLUMNS + 1
    calls = len(engine.calls)
    items = [{"input": str(i)} for i in range(MAX_ROWS // 2 + 1)]
    with pytest.raises(InvalidArgumentError, match=r"generates 2,002 rows \(1,001 item"):
        lmwidgets.prompt("{input}", dataset=items, compare="zero-shot,cot", model="many")
    with pytest.raises(InvalidArgumentError, match="--dataset has 2,001 items"):
        lmwidgets.prompt("{input}", dataset=[*items, *items[:-1]], model="many")
    too_many = range(MAX_CONFIRMED_ROWS + 1)  # refused by its length, before it is read
    with pytest.raises(InvalidArgumentError, match="even with --yes"):
        lmwidgets.prompt("{input}", dataset=too_many, model="many", confirm=True)
    assert len(engine.calls) == calls  # the refused runs generated nothing


def test_self_consistency_samples_obey_batch_size_show_progress_and_stop(fz, monkeypatch):
    """Samples are rows like dataset items: batched by --batch-size (runner's ``_group``), one
    progress step per batch, and a Stop ends the run between batches (issue 17)."""
    from lmwidgets.engines.base import StopSignal
    from lmwidgets.notebook.live import LiveView

    progress = []
    monkeypatch.setattr(LiveView, "progress", lambda self, done, total: progress.append(done))
    result = lmwidgets.prompt(
        "q", strategy="self-consistency", samples=10, batch_size=4, display=True
    )
    assert [len(rows) for rows in fz.calls] == [4, 4, 2]
    assert progress == [0, 1, 2, 3] and len(result[0].extras["samples"]) == 10

    fz.calls.clear()
    stop = StopSignal()
    seen = []

    def replies(text, adapter):
        seen.append(text)
        if len(seen) > 4:  # the second batch has begun: press Stop
            stop.set()
        return "The answer is: 4"

    fz.replies = replies
    stopped = lmwidgets.prompt(
        "q", strategy="self-consistency", samples=12, batch_size=4, stop=stop, display=False
    )
    assert stopped.status == "stopped" and len(fz.calls) == 2  # the third batch never ran
    assert stopped[0].finish_reason == "stopped"


# -- regression tests for what the fuzzing found -----------------------------------------------
def test_unreadable_text_from_variables_is_replaced_with_a_note(fz):
    result = lmwidgets.prompt("Say {x}", variables={"x": "bad \x00 \udcff"}, display=False)
    assert "\ufffd" in result[0].prompt and "\udcff" not in result.title
    assert any("U+DCFF (a lone surrogate)" in note for note in result.notes)
    result.to_json().encode("utf-8")


def test_the_title_is_clean_when_a_variable_brings_a_surrogate(fz):
    # found by the magics fuzzing: the live view's title came from the interpolated template
    result = lmwidgets.prompt("{x}", variables={"x": "\udcff"}, display=True)
    result.title.encode("utf-8")


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"region": [1, 1, 5, 5]}, "--region must be text"),  # was AttributeError
        ({"compare": ["cot", 1]}, "--compare item must be text"),  # was AttributeError
        ({"templates": {"sc_temperature": "hot"}}, "sc_temperature"),  # was TypeError
        ({"templates": "cot"}, "templates must be a dict"),
        ({"model": ["fz"]}, "--model must be text"),  # was TypeError (unhashable)
        ({"variables": [("x", 1)]}, "variables must be a dict"),
        ({"bogus": 1}, "has no option 'bogus'"),  # was TypeError from build_variants
        ({"display": "yes"}, "display must be True or False"),
    ],
)
def test_prompt_arguments_of_the_wrong_type(fz, options, needle):
    with pytest.raises(InvalidArgumentError) as caught:
        lmwidgets.prompt("q", **options)
    assert needle in str(caught.value)


def test_a_temperature_too_small_to_sample(fz, tiny):
    """``-t 1e-284`` overflowed the scores: a raw RuntimeError from torch's sampler."""
    for temperature in (1e-284, 5e-324, 0.0009):
        with pytest.raises(InvalidArgumentError, match=r"--temperature must be 0 \(greedy\) or at"):
            lmwidgets.prompt("q", model="tiny", temperature=temperature, max_new_tokens=1)
    with pytest.raises(InvalidArgumentError, match="sc_temperature"):
        lmwidgets.prompt("q", strategy="self-consistency", templates={"sc_temperature": 1e-300})
    result = lmwidgets.prompt("q", model="tiny", temperature=0.001, max_new_tokens=1, seed=1)
    assert result[0].tokens == 1
    records = copy.deepcopy(result.records)
    records[0]["generation"]["temperature"] = 1e-300
    with pytest.raises(lmwidgets.RecordError, match="--temperature"):
        lmwidgets.rerun(records)


def test_prompt_that_is_not_text(fz):
    with pytest.raises(PromptError, match="must be text, not int"):
        lmwidgets.prompt(5)


def test_load_model_options(registry):
    with pytest.raises(InvalidArgumentError, match="replies must map prompt text"):
        lmwidgets.load_model(engine="scripted", replies={"a": 5})  # was TypeError when prompted
    with pytest.raises(InvalidArgumentError, match="has no option 'bogus'"):
        lmwidgets.load_model("http://127.0.0.1:9", engine="openai", bogus=1)  # was TypeError
    with pytest.raises(InvalidArgumentError, match="--max-images must be at least 1"):
        lmwidgets.load_model(engine="scripted", max_images=0)
    with pytest.raises(InvalidArgumentError, match="SOURCE"):
        lmwidgets.load_model("a\x00b")
    for name in ("a,b", " x", "x "):  # bound a model no --model/--models could name again
        with pytest.raises(InvalidArgumentError, match="could not be named again"):
            lmwidgets.load_model(engine="scripted", name=name)
    with pytest.raises(InvalidArgumentError, match="--timeout must be a finite number above 0"):
        lmwidgets.connect("http://127.0.0.1:9", timeout=float("nan"))
    with pytest.raises(InvalidArgumentError, match="concurrency"):
        lmwidgets.connect("http://127.0.0.1:9", concurrency=0)
    assert not list(registry)


def test_rerun_of_records_larger_than_the_limits(fz):
    records = copy.deepcopy(lmwidgets.prompt("q", display=False).records)
    records[0]["generation"]["samples"] = 10**7  # ran unbounded (a hand-edited record)
    with pytest.raises(InvalidArgumentError, match="even with --yes"):
        lmwidgets.rerun(records, confirm=True)
    records[0]["generation"]["samples"] = MAX_SAMPLES + 1
    calls = len(fz.calls)
    with pytest.raises(InvalidArgumentError, match="--yes"):
        lmwidgets.rerun(records)
    assert len(fz.calls) == calls
    assert lmwidgets.rerun(records, confirm=True).matched


def test_adapter_scale_must_be_finite(registry, tiny, tiny_dir, tmp_path):
    from tiny_models import build_lora

    lora = build_lora(tiny_dir, tmp_path / "lora", seed=1)
    for scale in (float("inf"), float("nan"), "1"):
        with pytest.raises(InvalidArgumentError, match="--scale"):
            lmwidgets.load_adapter(lora, scale=scale)
    # pathlib raised RuntimeError("Could not determine home directory") for an unknown ~user
    with pytest.raises(lmwidgets.AdapterError, match="No adapter at '~0'"):
        lmwidgets.load_adapter("~0")
    assert not tiny.adapters


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"targets": ("nope",)}, "targets 'nope': no such module in tiny"),  # was peft's error
        ({"layers": [99]}, "layers 99: tiny has layers 0 to 1"),  # was peft's error
        ({"seed": 2**64}, "seed must be at most"),  # was torch's RuntimeError
        ({"output_dir": None}, "output_dir must be a path"),  # was TypeError
        ({"steps": 10**9}, "steps must be at most 10,000"),
        ({"targets": "q_proj"}, "targets must be a non-empty list"),
    ],
)
def test_train_lora_arguments(tiny, tmp_path, options, needle):
    arguments = {"output_dir": tmp_path / "out", "steps": 1, **options}
    output = arguments.pop("output_dir")
    with pytest.raises(InvalidArgumentError) as caught:
        lmwidgets.train_lora([("a", "b")], output, **arguments)
    assert needle in str(caught.value)
    assert not tiny.adapters and "peft_model" not in tiny.extras


class BrokenRepr:
    """A user's object whose conversions to text fail."""

    def _fail(self, *args):
        raise RuntimeError("broken")

    __repr__ = __str__ = __format__ = _fail


def test_values_with_a_broken_repr_are_named_by_their_type(fz):
    """Messages quoted such values with ``!r``/``{}``: the RuntimeError escaped (fuzzing)."""
    broken = BrokenRepr()
    for options in (
        {"temperature": broken},
        {"top_p": broken},
        {"max_new_tokens": broken},
        {"model": broken},
        {"display": broken},
        {"templates": {"sc_temperature": broken}},
    ):
        with pytest.raises(InvalidArgumentError, match="BrokenRepr"):
            lmwidgets.prompt("q", **options)
    with pytest.raises(lmwidgets.RecordError, match="not BrokenRepr"):
        lmwidgets.records(broken)
    # A field whose value cannot be shown stays as written (like an unknown name).
    result = lmwidgets.prompt("Hi {b} {b!r} {b.x}", variables={"b": broken}, display=False)
    assert "Hi {b} {b!r} {b.x}" in result[0].prompt
    # A dataset cell (or column name) that cannot become text names its row (CI fuzzing).
    for dataset in ([{"input": broken}], [{"input": "q", broken: 1}]):
        with pytest.raises(lmwidgets.DatasetError, match=r"dataset\[0\] holds a BrokenRepr"):
            lmwidgets.prompt("{input}", dataset=dataset, display=False)
    assert lmwidgets.prompt("{input}", dataset=[{"input": "fine"}], display=False)
    # Few-shot examples whose parts (or the row itself) cannot become text (fuzzing).
    for examples in ([(broken, None)], [broken], [{"input": broken, "output": "o"}]):
        with pytest.raises(lmwidgets.ExamplesError, match=r"examples\[0\]"):
            lmwidgets.prompt("q", strategy="few-shot", examples=examples, display=False)
    with pytest.raises(lmwidgets.ExamplesError, match="keys: a BrokenRepr"):
        lmwidgets.prompt("q", strategy="few-shot", examples=[{broken: 1}], display=False)
    # A record whose schema cannot be shown, and fork arguments that cannot (fuzzing).
    record = dict(lmwidgets.prompt("q", display=False)[0].record, schema=broken)
    with pytest.raises(lmwidgets.RecordError, match="has schema a BrokenRepr"):
        lmwidgets.rerun([record])
    tokens = lmwidgets.prompt("q", logprobs=2, display=False)
    with pytest.raises(lmwidgets.ForkError, match="not a BrokenRepr"):
        lmwidgets.fork(tokens, 0, broken, "x", display=False)
    with pytest.raises(lmwidgets.ForkError, match="a BrokenRepr"):
        lmwidgets.fork(tokens, 0, 0, broken, display=False)
    # Column names a kernel cannot print (a lone surrogate) are shown escaped.
    with pytest.raises(lmwidgets.ExamplesError, match=r"keys: \\ud800") as caught:
        lmwidgets.prompt("q", strategy="few-shot", examples=[{"\ud800": 1}], display=False)
    str(caught.value).encode("utf-8")


def test_an_unknown_prompt_option_lists_every_option_and_the_closest(fz):
    with pytest.raises(InvalidArgumentError) as caught:
        lmwidgets.prompt("q", max_tokens=5)
    message = str(caught.value)
    assert "has no option 'max_tokens'. Did you mean 'max_new_tokens'?" in message, message
    listed = message.split("Options: ")[1]
    for name in ("max_new_tokens", "temperature", "seed", "system", "model", "compare"):
        assert name in listed, (name, message)
