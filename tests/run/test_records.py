"""Reading run records in every form lmwidgets writes, and validating them field by field."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest

import lmwidgets
from lmwidgets.errors import RecordError
from lmwidgets.run.records import (
    RECORD_MIME,
    RUN_RECORD_SCHEMA,
    load_records,
    validate_record,
    validate_records,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
V0_1 = {
    "notebook": FIXTURES / "records_v0_1.ipynb",
    "comparison": FIXTURES / "records_v0_1_comparison.json",
    "list": FIXTURES / "records_v0_1_list.json",
}


@pytest.fixture
def scripted(registry):
    """A scripted model that takes images (no weights, no torch)."""
    return lmwidgets.load_model(
        engine="scripted", name="lmw_s", replies={"*": "Paris is the answer."}, media=("image",)
    )


@pytest.fixture
def comparison(scripted):
    return lmwidgets.prompt("Capital of {c}?", variables={"c": "France"}, display=False)


# Reading -----------------------------------------------------------------------------------
@pytest.mark.parametrize("form", sorted(V0_1))
def test_v0_1_fixtures_read_back_and_validate(form):
    path = V0_1[form]
    found = load_records(path)
    assert len(found) == (3 if form == "comparison" else 10)
    assert load_records(str(path)) == found
    assert load_records(path.read_text(encoding="utf-8")) == found  # the JSON text itself
    assert lmwidgets.records(path) == found
    assert {r["schema"] for r in found} == {1}
    validate_records(found)


def test_v0_1_comparison_holds_the_notebooks_second_output():
    listed = load_records(V0_1["list"])
    assert load_records(V0_1["notebook"]) == listed
    assert load_records(V0_1["comparison"]) == listed[1:4]


def test_every_form_of_a_new_comparison(comparison, tmp_path):
    expected = comparison.records
    payload = comparison.mimebundle()[RECORD_MIME]
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"data": {RECORD_MIME: payload}}]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "cmp.json").write_text(comparison.to_json())
    (tmp_path / "list.json").write_text(json.dumps(expected))
    (tmp_path / "one.json").write_text(json.dumps(expected[0]))
    forms = [
        comparison,
        comparison[0],
        notebook,
        tmp_path / "nb.ipynb",
        comparison.to_json(),
        tmp_path / "cmp.json",
        str(tmp_path / "cmp.json"),
        expected,
        json.dumps(expected),
        tmp_path / "list.json",
        payload,
        expected[0],
        tmp_path / "one.json",
    ]
    for form in forms:
        assert load_records(form) == expected, form
    assert expected[0]["schema"] == RUN_RECORD_SCHEMA
    validate_records(expected)


def test_a_notebook_payload_saved_as_a_string_is_read():
    payload = json.dumps({"schema": 1, "records": [{"t": "a"}]})
    notebook = {"cells": [{"outputs": [{"data": {RECORD_MIME: payload}}]}, {"cell_type": "md"}]}
    assert load_records(notebook) == [{"t": "a"}]


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (42, "Cannot find run records.*not int 42"),
        (None, "Cannot find run records"),
        (["a", "b"], "Item 0 of the value given is not a run record"),
        ([{"prompt": {}}, 3], "Item 1 "),
        ("[1, 2]", "Item 0 of the JSON text given"),
        ("{not json", "Cannot read records from the JSON text"),
        ({"name": "x"}, "Cannot find run records"),
        ({"cells": "x"}, "its 'cells' is str 'x', not a list of notebook cells"),
        ({"results": [{"text": "no record"}]}, "result 0 .* has no record"),
        ({"records": "x"}, "its 'records' is str 'x', not a list"),
        ({"metadata": {}, "nbformat": 4}, "Cannot find run records"),  # a notebook without cells
    ],
)
def test_garbage_is_a_record_error(source, match):
    with pytest.raises(RecordError, match=match):
        load_records(source)


def test_files_that_are_not_records(tmp_path):
    with pytest.raises(RecordError, match="No notebook at"):
        load_records(tmp_path / "missing.ipynb")
    with pytest.raises(RecordError, match="No records file at"):
        load_records(str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(RecordError, match=r"Cannot read .*bad\.json"):
        load_records(tmp_path / "bad.json")
    (tmp_path / "config.json").write_text(json.dumps({"theme": "dark"}))
    with pytest.raises(RecordError, match=r"Cannot find run records in .*config\.json"):
        load_records(tmp_path / "config.json")
    (tmp_path / "numbers.json").write_text("[1, 2, 3]")
    with pytest.raises(RecordError, match=r"Item 0 of .*numbers\.json"):
        load_records(tmp_path / "numbers.json")
    with pytest.raises(RecordError, match="Cannot read"):
        load_records(tmp_path)  # a directory


# Validation --------------------------------------------------------------------------------
def _old_record():
    """A dataset few-shot record written by release 0.1 (schema 1)."""
    return copy.deepcopy(load_records(V0_1["list"])[6])


def _setter(path, value):
    def change(record):
        *parents, last = path
        target = record
        for key in parents:
            target = target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return change


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (["schema"], 3, "schema 3"),
        (["schema"], "1", "schema '1'"),
        (["schema"], True, "schema True"),
        (["run"], 7, "run must be a string"),
        (["variant"], ["x"], "variant must be a string"),
        (["model"], KeyError, "model must be a mapping, not missing"),
        (["model"], "smollm2", "model must be a mapping, not str"),
        (["model", "source"], 3, "model.source must be"),
        (["model", "engine"], False, "model.engine must be"),
        (["model", "weights_sha256"], {"x": 1}, "model.weights_sha256 must be"),
        (["model", "dtype"], 32, "model.dtype must be"),
        (["adapter"], "pirate", "adapter must be a mapping"),
        (["adapter"], {"path": "x"}, "adapter.name must be a non-empty string"),
        (["strategy"], "few-shot", "strategy must be a mapping, not str 'few-shot'"),
        (["strategy"], None, "strategy must be a mapping"),
        (["strategy", "name"], KeyError, "strategy.name must be a non-empty string"),
        (["strategy", "name"], "tree-of-thought", "strategy.name is 'tree-of-thought'"),
        (["prompt"], KeyError, "prompt must be a mapping"),
        (["prompt", "messages"], KeyError, "prompt.messages must be a non-empty list"),
        (["prompt", "messages"], [], "prompt.messages must be a non-empty list"),
        (["prompt", "messages"], "hi", "prompt.messages must be a list"),
        (["prompt", "messages"], ["hi"], r"prompt.messages\[0\] must be a mapping"),
        (["prompt", "messages", 0, "role"], KeyError, r"prompt.messages\[0\].role"),
        (["prompt", "messages", 1, "content"], 5, r"prompt.messages\[1\].content must be"),
        (["prompt", "messages", 1, "content"], [{"text": "x"}], r"content\[0\].type"),
        (["prompt", "messages", 1, "content"], [{"type": "text"}], r"content\[0\].text"),
        (["prompt", "template"], 1, "prompt.template must be"),
        (["prompt", "rendered"], ["x"], "prompt.rendered must be"),
        (["prompt", "images"], {"name": "x"}, "prompt.images must be a list"),
        (["prompt", "images"], ["cat.png"], r"prompt.images\[0\] must be a mapping"),
        (["prompt", "images"], [{"name": "cat"}], r"prompt.images\[0\].sha256"),
        (["prompt", "media"], [{"kind": "smell", "sha256": "0"}], r"media\[0\].kind is 'smell'"),
        (["prompt", "media"], [{"sha256": "0", "region": [1, 2]}], r"media\[0\].region"),
        (["prompt", "media"], [{"sha256": "0", "region": "1,2,3,4"}], r"media\[0\].region"),
        (["prompt", "media"], [{"sha256": "0", "region_mode": "blur"}], r"region_mode is 'blur'"),
        (["generation"], KeyError, "generation must be a mapping"),
        (["generation", "max_new_tokens"], KeyError, "generation.max_new_tokens must be"),
        (["generation", "max_new_tokens"], "8", "generation.max_new_tokens must be a whole"),
        (["generation", "max_new_tokens"], 0, "generation.max_new_tokens must be a whole"),
        (["generation", "max_new_tokens"], 8.5, "generation.max_new_tokens must be a whole"),
        (["generation", "temperature"], "hot", "generation.temperature must be a number >= 0"),
        (["generation", "temperature"], -1, "generation.temperature must be a number >= 0"),
        (["generation", "temperature"], None, "generation.temperature must be a number"),
        (["generation", "top_p"], 0, r"generation.top_p must be a number > 0 and <= 1"),
        (["generation", "top_p"], 1.5, "generation.top_p must be"),
        (["generation", "seed"], -1, "generation.seed must be a whole number >= 0"),
        (["generation", "seed"], "3", "generation.seed must be a whole number"),
        (["generation", "samples"], 0, "generation.samples must be"),
        (["generation", "batch_size"], True, "generation.batch_size must be"),
        (["input"], "hot", "input must be a mapping"),
        (["output"], KeyError, "output must be a mapping"),
        (["output", "text"], KeyError, "output.text must be a string, not missing"),
        (["output", "text"], None, "output.text must be a string"),
        (["output", "text_truncated"], "no", "output.text_truncated must be true or false"),
        (["output", "answer"], 4, "output.answer must be"),
        (["versions"], ["torch"], "versions must be a mapping"),
        (["expected"], 4, "expected must be a string or null, not int 4"),
        (["correct"], "yes", "correct must be true, false or null, not str 'yes'"),
        (["score"], 1.5, "score must be a number >= 0 and <= 1, not float 1.5"),
        (["score"], "1", "score must be a number >= 0 and <= 1"),
        (["score"], True, "score must be a number"),
        (["compared"], 4, "compared must be a string or null"),
        (["score_error"], ["x"], "score_error must be a string or null"),
        (["scorer"], 3, "scorer must be a string or null"),
        (["scorer"], "fuzzy", r"scorer is 'fuzzy', which cannot score again \(Unknown scorer"),
        (["scorer"], "regex:(", "scorer is 'regex:\\(', which cannot score again.*compile"),
        (["scorer"], "number:x", "tolerance must be a number"),
        (["scorer"], "callable:", "scorer is 'callable:'"),
    ],
)
def test_a_malformed_field_is_named(path, value, field):
    record = _old_record()
    record["prompt"]["messages"].append({"role": "user", "content": "again"})
    _setter(path, value)(record)
    with pytest.raises(RecordError, match=field):
        validate_records([_old_record(), record])
    named = r"^Record 1 is" if path == ["variant"] else r"^Record 1 \('few-shot'\)"
    with pytest.raises(RecordError, match=named):
        validate_records([_old_record(), record])


def test_the_model_must_be_named_somehow():
    record = _old_record()
    record["model"].update(source=None, weights_sha256=None)
    with pytest.raises(RecordError, match="model names no model to run on"):
        validate_record(record)
    record["model"]["weights_sha256"] = "ab" * 32  # found by its weights among loaded models
    validate_record(record)
    other = _old_record()
    other["model"] = {"engine": "scripted", "name": "lmw_s"}  # other engines: by name
    validate_record(other)


def test_optional_fields_may_be_missing_or_null():
    record = _old_record()
    for key in ("schema", "run", "variant", "adapter", "input", "versions", "expected"):
        record.pop(key)
    for key in ("temperature", "top_p", "seed", "samples", "batch_size"):
        record["generation"].pop(key)
    record["prompt"].pop("images")
    record["prompt"].pop("template")
    record["output"] = {"text": ""}
    validate_record(record)
    assert record["strategy"]["name"] == "few-shot"


def test_scoring_fields_are_optional_and_read_when_present():
    record = _old_record()  # written before scorers: correct, but no score/scorer/compared
    assert record["correct"] is True and "scorer" not in record
    validate_record(record)
    for spec in ("auto", "exact", "contains", "choice", "number", "number:0.01", "number:1%"):
        validate_record({**record, "scorer": spec, "score": 0.5, "compared": "small"})
    validate_record({**record, "scorer": r"regex:Answer: (\w+)", "score": None, "correct": None})
    validate_record({**record, "scorer": "callable:my_fn", "score_error": "ValueError: x"})


def test_new_dataset_records_carry_the_scorer(scripted):
    comparison = lmwidgets.prompt(
        "{input}", dataset=[{"input": "capital", "expected": "Paris"}], display=False
    )
    record = comparison[0].record
    assert record["scorer"] == "auto" and record["score"] == 1.0 and record["correct"] is True
    assert record["compared"] == "Paris is the answer" == record["output"]["answer"]
    validate_records(comparison.records)
    validate_records(load_records(comparison.to_json()))


def test_not_a_record():
    with pytest.raises(RecordError, match="Record 2 is a str, not a run record"):
        validate_records([_old_record(), _old_record(), "text"])
    with pytest.raises(RecordError, match="The record is a list"):
        validate_record([])


def test_new_records_with_media_and_content_lists_validate(scripted):
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    comparison = lmwidgets.prompt(
        "What is {img} here?",
        images=[image],
        region="1,1,4,4",
        compare="zero-shot,no-image",
        display=False,
    )
    record = comparison[0].record
    assert record["prompt"]["media"][0]["kind"] == "image"
    assert isinstance(record["prompt"]["messages"][-1]["content"], list)
    validate_records(comparison.records)
    # Records from between the two schemas: media under the old key, or both keys.
    old_style = copy.deepcopy(record)
    old_style["prompt"]["images"] = old_style["prompt"].pop("media")
    validate_record(old_style)
    old_style["prompt"]["media"] = [{"kind": "image"}]
    with pytest.raises(RecordError, match=r"prompt.media\[0\].sha256"):
        validate_record(old_style)
