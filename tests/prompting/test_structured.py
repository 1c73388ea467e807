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


def test_rerun_holds_each_column_to_its_recorded_constraint(tiny):
    # Records keep the constraint under output.structured; a re-run without it wrote free text
    # (a random model never says exactly "positive") and no structured column ever matched.
    original = lmwidgets.prompt(
        "Sentiment:",
        one_of="positive,negative",
        constrain="both",
        max_new_tokens=8,
        display=False,
    )
    report = lmwidgets.rerun(original.records)
    assert report.matched, [(r.variant, r.old_text, r.new_text) for r in report.rows]
    enforced = [
        r for r in report.comparisons[0] if r.record["output"]["structured"]["enforced"] is True
    ]
    assert len(enforced) == 1 and enforced[0].text in ("positive", "negative")
    assert {
        r.record["output"]["structured"]["constraint"]["kind"] for r in report.comparisons[0]
    } == {"one_of"}
    schema = lmwidgets.prompt("Answer:", json=SCHEMA, max_new_tokens=40, display=False)
    again = lmwidgets.rerun(schema.to_json())
    assert again.matched and again.comparisons[0][0].valid is not None


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


# score="fields": a dict expected against the parsed answer ----------------------------------------
PEOPLE = [
    {"input": "Ann is 34.", "expected": {"name": "Ann", "age": 34}},
    {"input": "Bo is 35.", "expected": {"name": "bo", "age": 35.0}},
    {"input": "Cy is 9.", "expected": {"name": "Cy", "age": 9}},
]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


@pytest.fixture
def people(registry):
    from lmwidgets.engines.scripted import ScriptedEngine

    replies = {
        "Ann": '{"name": "Ann", "age": 35}',
        "Bo": '{"name": "Bo", "age": 35, "city": "Oslo"}',
        "Cy": "Cy is nine.",
    }
    registry.add(ScriptedEngine("people", replies=replies))


def test_fields_scores_a_dict_expected_field_by_field(people):
    comparison = lmwidgets.prompt(
        "{input}", json=PERSON, constrain="free", dataset=PEOPLE, score="fields", display=False
    )
    ann, bo, cy = comparison
    assert ann.score == 0.5 and ann.correct is True
    assert ann.verdict == "1 of 2 fields match (age: got 35, expected 34)"
    assert bo.score == 1.0 and bo.verdict == "2 of 2 fields match"  # "bo" ~ "Bo", 35.0 == 35
    assert cy.valid is False and cy.score == 0.0 and cy.verdict == "no structured answer"
    # Result.expected and the records show the dict readably, as JSON text
    assert ann.expected == '{"name": "Ann", "age": 34}'
    assert ann.record["expected"] == ann.expected and ann.record["scorer"] == "fields"
    assert ann.record["input"]["expected"] == {"name": "Ann", "age": 34}
    assert comparison.scores == {"zero-shot": 0.5}
    assert "accuracy 50%" in " ".join(comparison.notes)
    again = lmwidgets.Comparison.from_records(comparison.records)
    assert again[0].expected == ann.expected and again[0].score == 0.5


def test_fields_takes_pydantic_expected_and_a_dataframe(people):
    pandas = pytest.importorskip("pandas")

    class Person(BaseModel):
        name: str
        age: int

    frame = pandas.DataFrame([{"input": "Ann is 34.", "expected": Person(name="ann", age=35)}])
    result = lmwidgets.prompt(
        "{input}", json=Person, constrain="free", dataset=frame, score="fields", display=False
    )[0]
    assert result.score == 1.0 and isinstance(result.parsed, Person)


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"dataset": PEOPLE}, "give a JSON schema too"),
        ({"dataset": PEOPLE, "one_of": "a,b", "constrain": "free"}, "give a JSON schema too"),
        (
            {"dataset": [{"input": "x", "expected": "34"}], "json": PERSON, "constrain": "free"},
            r"dataset\[0\]'s 'expected' is str '34', not a dict",
        ),
        (
            {"dataset": [{"input": "x", "expected": {}}], "json": PERSON, "constrain": "free"},
            "not a dict of the fields",
        ),
        ({"score": "fields:x", "dataset": PEOPLE}, "takes no argument"),
    ],
)
def test_fields_misuse_is_a_clear_error_before_the_run(people, options, needle):
    from lmwidgets.errors import InvalidArgumentError

    options = {"score": "fields", **options}
    with pytest.raises(InvalidArgumentError, match=needle):
        lmwidgets.prompt("{input}", display=False, **options)


def test_text_scorers_judge_the_structured_answer(registry):
    from lmwidgets.engines.scripted import ScriptedEngine

    registry.add(ScriptedEngine("sums", replies={"*": '{"answer": 42}'}))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    data = [{"input": "6*7", "expected": 42}, {"input": "6*8", "expected": "48"}]
    comparison = lmwidgets.prompt(
        "{input}", json=schema, constrain="free", dataset=data, score="exact", display=False
    )
    assert [r.score for r in comparison] == [1.0, 0.0]
    assert comparison[0].compared == "42" and comparison[1].verdict == "got 42"


def test_fields_judge_directly():
    from lmwidgets.prompting.fields import same, score_fields
    from lmwidgets.prompting.scoring import Output

    assert same({"a": [1, "The Cat"]}, {"a": [1.0, "cat"]}) and not same(True, 1)
    assert not same([1], [1, 2]) and same(None, None) and not same("x", None)
    judged = score_fields(Output("{}", "{}", None, {"a": 1}), '{"a": 1, "b": "x"}')
    assert judged == (0.5, '{"a": 1}', "1 of 2 fields match (b: got nothing, expected x)")
    many = score_fields(Output("", "", None, {}), '{"a": 1, "b": 2, "c": 3, "d": 4}')
    assert many.how.endswith("; 1 more)") and many.score == 0.0


# --logprobs marks the tokens the mask forced --------------------------------------------------------
LABEL = {
    "type": "object",
    "properties": {"sentiment_label": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["sentiment_label"],
    "additionalProperties": False,
}


def test_logprobs_mark_the_tokens_the_constraint_forced(tiny):
    comparison = lmwidgets.prompt(
        "Label:", json=LABEL, constrain="both", logprobs=3, max_new_tokens=30, display=False
    )
    free, enforced = comparison.results
    assert enforced.valid is True, enforced.text
    tokens = enforced.tokens_detail
    assert "".join(t["text"] for t in tokens) == enforced.text
    forced = [t for t in tokens if t.get("forced")]
    # the key and the punctuation around it allow one token each; the label's start does not
    assert forced and len(forced) < len(tokens)
    assert "sentiment" in "".join(t["text"] for t in forced)
    # the model's own distribution: a random model does not give forced tokens probability 1
    assert any(t["logprob"] < -0.01 for t in forced)
    assert not any(t.get("forced") for t in free.tokens_detail)
    kept = enforced.record["output"]["tokens_detail"]
    assert [bool(t.get("forced")) for t in kept] == [bool(t.get("forced")) for t in tokens]
    from lmwidgets.run.records import validate_record

    validate_record(enforced.record)
    # the live view's cells carry the mark, and the static copy says it in the token's title
    from lmwidgets.notebook.token_cells import detail_entry

    entries = [detail_entry(t) for t in tokens]
    assert [e[4:] == [True] for e in entries] == [bool(t.get("forced")) for t in tokens]
    assert "forced by the constraint" in comparison.to_html()


# cot before a structured answer as one Lark grammar (what a vLLM server gets) ---------------------
def _lark_matches(lark, text):
    import llguidance

    from lmwidgets.engines.grammar import _byte_tokenizer

    matcher = llguidance.LLMatcher(_byte_tokenizer(), llguidance.grammar_from("grammar", lark))
    assert not matcher.is_error(), matcher.get_error()
    return bool(matcher.consume_tokens(list(text.encode()))) and matcher.is_accepting()


def test_cot_lark_allows_free_reasoning_then_the_shape():
    from lmwidgets.core.constraints import ANSWER_MARKER, Constraint
    from lmwidgets.engines.grammar import cot_lark
    from lmwidgets.engines.served.engine import structured_outputs

    person = Constraint("json", PERSON, after=ANSWER_MARKER)
    lark = cot_lark(person)
    assert structured_outputs(person) == {"grammar": lark}
    assert _lark_matches(lark, 'Ann, 34. The answer is: {"name":"Ann","age":34}')
    assert not _lark_matches(lark, '{"name":"Ann","age":34}')  # the marker is required
    assert not _lark_matches(lark, 'The answer is: {"name": "Ann", "age": 34}')  # compact JSON
    slashes = cot_lark(Constraint("regex", r"[0-9]+/[0-9]+\/x", after=ANSWER_MARKER))
    assert _lark_matches(slashes, "half is The answer is: 1/2/x")
    labels = cot_lark(Constraint("one_of", ("yes", 'say "no"'), after=ANSWER_MARKER))
    assert _lark_matches(labels, 'Hmm. The answer is: say "no"')
    assert not _lark_matches(labels, "Hmm. The answer is: maybe")
    with pytest.raises(ConstraintError):
        cot_lark(Constraint("grammar", 'start: "a"', after=ANSWER_MARKER))
