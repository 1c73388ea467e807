"""Structured answers: constraints enforced while decoding (a real tiny model and llguidance),
checked for free columns, the constraint axis, records, magics and bad input."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

import lmwidgets
from lmwidgets.errors import ConstraintError


class City(BaseModel):
    name: str
    population: int


SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["yes", "no"]},
        "n": {"type": "integer", "minimum": 0, "maximum": 99},
    },
    "required": ["label", "n"],
    "additionalProperties": False,
}


def test_enforced_json_schema_is_valid_and_parsed(tiny):
    result = lmwidgets.prompt("Answer:", json=SCHEMA, max_new_tokens=60, display=False)[0]
    assert result.valid is True, result.text
    data = json.loads(result.text)
    assert result.parsed == data and data["label"] in ("yes", "no")
    assert isinstance(data["n"], int)
    structured = result.record["output"]["structured"]
    assert structured["constraint"] == {"kind": "json", "schema": SCHEMA}
    assert structured["enforced"] is True and structured["parsed"] == data


def test_pydantic_model_gives_an_instance(tiny):
    result = lmwidgets.prompt("City:", json=City, max_new_tokens=60, display=False)[0]
    if result.finish_reason == "eos":
        assert result.valid is True and isinstance(result.parsed, City)
    else:  # a random model may ramble inside a string until the budget: invalid, no crash
        assert result.valid is False and result.parsed is None
    assert result.record["output"]["structured"]["constraint"]["model"].endswith("City")


def test_regex_and_one_of_enforced(tiny):
    comparison = lmwidgets.prompt("Date:", regex=r"\d{4}-\d{2}", max_new_tokens=12, display=False)
    result = comparison[0]
    assert result.valid and len(result.text) == 7 and result.text[4] == "-"
    assert result.answer == result.text
    labels = lmwidgets.prompt("Sentiment:", one_of="positive,negative", display=False)[0]
    assert labels.text in ("positive", "negative") and labels.parsed == labels.text


def test_grammar_enforced(tiny):
    grammar = 'start: "(" num "," num ")"\nnum: /[0-9]{1,3}/'
    result = lmwidgets.prompt("Point:", grammar=grammar, max_new_tokens=12, display=False)[0]
    assert result.valid and result.text.startswith("(") and result.text.endswith(")")


def test_constrain_both_free_and_enforced_share_a_batch(tiny):
    comparison = lmwidgets.prompt(
        "Sentiment:",
        one_of=["positive", "negative"],
        constrain="both",
        max_new_tokens=8,
        display=False,
    )
    free, enforced = comparison.results
    assert [free.variant, enforced.variant] == ["free", "enforced"]
    assert free.coords["constraint"] == "free" and enforced.coords["constraint"] == "enforced"
    assert enforced.valid is True
    assert free.valid is (free.text.strip() in ("positive", "negative"))
    note = next(n for n in comparison.notes if n.startswith("Structured answers"))
    assert "free 0/1 valid" in note or "free 1/1 valid" in note
    assert "enforced 1/1 valid (100%)" in note


def test_cot_constrains_only_the_final_answer(tiny):
    result = lmwidgets.prompt(
        "Is it hot?", strategy="cot", one_of="yes,no", max_new_tokens=40, display=False
    )[0]
    structured = result.record["output"]["structured"]
    assert structured["constraint"]["after"] == "The answer is:"
    if result.valid:
        assert result.text.rstrip().endswith(("yes", "no")) and result.parsed in ("yes", "no")
    else:  # the budget ran out while reasoning: cut off, marked invalid
        assert result.finish_reason == "length"


def test_budget_too_small_is_invalid_not_a_crash(tiny):
    result = lmwidgets.prompt("City:", json=City, max_new_tokens=2, display=False)[0]
    assert result.finish_reason == "length" and result.valid is False and result.parsed is None


def test_grammar_compiles_once_across_runs(tiny):
    lmwidgets.prompt("a", regex=r"[ab]{3}", max_new_tokens=5, display=False)
    grammars = tiny.extras["grammars"]
    before = grammars.compiled
    lmwidgets.prompt("b", regex=r"[ab]{3}", max_new_tokens=5, display=False)
    assert grammars.compiled == before


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"regex": "[a"}, "--regex cannot be used"),
        ({"regex": "[^\\s\\S]"}, "admits no answer"),
        ({"json": {"type": "nonsense"}}, "--json cannot be used"),
        ({"json": 42}, "pydantic model class or a JSON-schema dict"),
        ({"grammar": 'start: "a" | ('}, "--grammar cannot be used"),
        ({"grammar": "start: foo\nfoo: "}, "admits no answer"),
        ({"one_of": ""}, "at least one"),
        ({"regex": "a", "one_of": "a,b"}, "not several"),
        ({"constrain": "both"}, "needs a constraint"),
        ({"regex": "a", "constrain": "maybe"}, "choose from"),
    ],
)
def test_bad_constraints_are_clear_errors(tiny, options, needle):
    with pytest.raises(ConstraintError, match=needle):
        lmwidgets.prompt("x", display=False, **options)


def test_an_engine_that_cannot_enforce_is_named(registry):
    from lmwidgets.engines.scripted import ScriptedEngine

    registry.add(ScriptedEngine("robot", replies={"x": "yes"}))
    with pytest.raises(ConstraintError, match=r"robot .*--constrain free"):
        lmwidgets.prompt("x", one_of="yes,no", display=False)
    free = lmwidgets.prompt("x", one_of="yes,no", constrain="free", display=False)[0]
    assert free.valid is True and free.parsed == "yes"


def test_magic_pattern_reaches_lmwidgets_as_typed(shell, tiny):
    shell.run_cell("lmw_unused = 1")
    # Single quotes keep the backslash (shell rules); IPython leaves {4} alone.
    result = shell.run_cell("%%prompt --regex '[0-9]{4}' -n 8 --out lmw_s\nYear:")
    assert result.success, result.error_in_exec
    record = shell.user_ns["lmw_s"][0].record
    assert record["output"]["structured"]["constraint"]["pattern"] == "[0-9]{4}"
    assert shell.user_ns["lmw_s"][0].valid is True


def test_static_copy_and_view_show_the_verdict_and_the_parsed_json(tiny):
    from lmwidgets.notebook.live import structured_cell
    from lmwidgets.notebook.widgets import PromptView

    comparison = lmwidgets.prompt(
        "Answer:", json=SCHEMA, constrain="both", max_new_tokens=40, display=False
    )
    enforced = comparison[1]
    html = comparison.to_html()
    assert "✓ valid · enforced" in html and "parsed JSON" in html
    assert ("✗ invalid · free" in html) is (comparison[0].valid is False)
    cell = PromptView.column("enforced", structured=structured_cell(enforced))
    assert cell["structured"]["valid"] and cell["structured"]["enforced"]
    assert json.loads(cell["structured"]["parsed"]) == enforced.parsed
    again = lmwidgets.Comparison.from_records(comparison.records)
    assert again[1].valid is True and again[1].parsed == enforced.parsed
