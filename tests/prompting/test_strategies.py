"""Strategies: rendering, answer extraction, voting, batching, datasets, exports, bad input."""

import json

import pandas as pd
import pytest

import lmwidgets
from lmwidgets.core.answers import extract_answer, is_correct, majority_vote, normalize
from lmwidgets.core.examples import normalize_examples
from lmwidgets.prompting.strategies import Templates

PAIRS = [("2 + 3?", "5"), ("10 - 4?", "6"), ("3 * 3?", "9")]


def run(**kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    kwargs.setdefault("display", False)
    kwargs.setdefault("cache", False)  # these tests compare generations, not cached answers
    return lmwidgets.prompt(kwargs.pop("text", "7 + 8?"), **kwargs)


# Rendering -------------------------------------------------------------------------------
def test_few_shot_chat_turns_in_order(tiny):
    result = run(strategy="few-shot", examples=PAIRS)[0]
    expected = "".join(
        f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n{a}<|im_end|>\n" for q, a in PAIRS
    )
    assert result.prompt == expected + "<|im_start|>user\n7 + 8?<|im_end|>\n<|im_start|>assistant\n"
    assert result.record["strategy"]["examples"] == [
        {"input": q, "output": a, "rationale": None} for q, a in PAIRS
    ]


def test_few_shot_plain_model_blocks(tiny_plain_dir, registry):
    lmwidgets.load_model(str(tiny_plain_dir))
    result = run(strategy="few-shot", examples=PAIRS[:2])[0]
    assert (
        result.prompt
        == "Input: 2 + 3?\nOutput: 5\n\nInput: 10 - 4?\nOutput: 6\n\nInput: 7 + 8?\nOutput:"
    )


@pytest.mark.parametrize(
    "examples",
    [
        PAIRS,
        [{"input": q, "output": a} for q, a in PAIRS],
        pd.DataFrame({"input": [q for q, _ in PAIRS], "output": [a for _, a in PAIRS]}),
    ],
)
def test_examples_shapes_and_shots(tiny, examples):
    result = run(strategy="few-shot", examples=examples, shots=2)[0]
    assert result.prompt.count("<|im_start|>assistant\n") == 3  # 2 demonstrations + the question
    assert "3 * 3?" not in result.prompt


def test_zero_shot_cot_instruction_is_visible_and_overridable(tiny):
    result = run(strategy="cot")[0]
    assert Templates().cot_instruction in result.prompt
    assert result.record["strategy"]["cot_instruction"] == Templates().cot_instruction
    custom = run(strategy="cot", templates={"cot_instruction": "Reason carefully."})[0]
    assert "7 + 8?\n\nReason carefully.<|im_end|>" in custom.prompt


def test_few_shot_cot_uses_rationales(tiny):
    examples = [
        {"input": "2 + 3?", "output": "5", "rationale": "Two plus three is five."},
        {"input": "1 + 1?", "output": "2"},
    ]
    result = run(strategy="cot", examples=examples)[0]
    assert (
        "<|im_start|>assistant\nTwo plus three is five.\nThe answer is: 5<|im_end|>"
        in result.prompt
    )
    assert "1 + 1?" not in result.prompt  # examples without a rationale are not worked examples


def test_unknown_template_field(tiny):
    with pytest.raises(lmwidgets.StrategyError, match="bogus"):
        run(strategy="cot", templates={"bogus": "x"})


# Answers and votes -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("7 + 8 = 15. The answer is 15.", "15"),
        ("Reasoning...\nThe final answer is: **Paris**.", "Paris"),
        ("The answer is 3. Wait, the answer is 4", "4"),
        ("Steps\nAnswer: blue whale", "blue whale"),
        ("There are 1,234 apples and 5 pears", "5"),
        ("First line\nLast line.\n\n", "Last line"),
        ("", None),
        ("   ", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_normalize_and_correctness():
    assert normalize("The Eiffel Tower.") == "eiffel tower"
    assert normalize("1,000") == normalize("1000.0") == "1000"
    assert is_correct("Paris.", "paris") and is_correct("4", "4.0") and is_correct("b", "a|b")
    assert not is_correct(None, "x") and not is_correct("", "")


def test_majority_vote():
    assert majority_vote(["7", "8", "7.0", None, "seven"]) == ("7", {"7": 2, "8": 1, "seven": 1})
    assert majority_vote([None, ""]) == (None, {})
    assert majority_vote(["x", "y"])[0] == "x"  # ties go to the first
    assert majority_vote(["A", "B", "a"]) == ("A", {"a": 2, "b": 1})  # choice letters are answers


def test_self_consistency_record_and_vote(tiny):
    comparison = run(strategy="self-consistency", samples=4, seed=3, max_new_tokens=8)
    result = comparison[0]
    extras = result.record["output"]
    assert len(extras["samples"]) == 4 and sum(extras["votes"].values()) <= 4
    assert result.record["generation"]["temperature"] == Templates().sc_temperature
    assert result.record["generation"]["samples"] == 4
    winner, votes = majority_vote([s["answer"] for s in extras["samples"]])
    assert result.answer == winner and extras["votes"] == votes
    assert (
        run(strategy="self-consistency", samples=4, seed=3, max_new_tokens=8)[0].record["output"][
            "samples"
        ]
        == extras["samples"]
    )


# Batching --------------------------------------------------------------------------------
def test_compare_runs_one_batch_and_equals_alone(tiny, monkeypatch):
    import lmwidgets.engines.transformers.generation as generation

    calls = []
    original = generation.generate_batch

    def counting(*args, **kwargs):
        calls.append(len(args[2]))
        return original(*args, **kwargs)

    monkeypatch.setattr(generation, "generate_batch", counting)
    together = run(compare="zero-shot,few-shot,cot", examples=PAIRS, max_new_tokens=12)
    assert calls == [3]
    assert together.variants == ["zero-shot", "few-shot", "cot"]
    for name in together.variants:
        alone = run(strategy=name, examples=PAIRS, max_new_tokens=12)[0]
        assert together[name].text == alone.text
        assert together[name].prompt == alone.prompt


def test_greedy_and_sampled_columns_share_a_batch(tiny, monkeypatch):
    import lmwidgets.engines.transformers.generation as generation

    calls = []
    original = generation.generate_batch
    monkeypatch.setattr(
        generation, "generate_batch", lambda *a, **k: calls.append(len(a[2])) or original(*a, **k)
    )
    mixed = run(compare="zero-shot,self-consistency", samples=3, max_new_tokens=10, seed=0)
    assert calls == [4]
    assert mixed["zero-shot"].text == run(max_new_tokens=10)[0].text  # greedy row unaffected


# Datasets --------------------------------------------------------------------------------
DATA = [
    {"input": "2 + 2", "expected": "4"},
    {"input": "3 + 3", "expected": "6"},
    {"input": "5 + 5", "expected": "10"},
]


def test_dataset_grid_scores_and_export(tiny):
    comparison = run(
        text="Compute {input}.", compare="zero-shot,cot", dataset=pd.DataFrame(DATA), batch_size=4
    )
    assert len(comparison) == 6
    assert [r.input for r in comparison] == ["2 + 2", "2 + 2", "3 + 3", "3 + 3", "5 + 5", "5 + 5"]
    assert "Compute 3 + 3.<|im_end|>" in comparison[2].prompt
    assert set(comparison.scores) == {"zero-shot", "cot"}
    for result in comparison:
        assert result.correct is not None and result.record["correct"] == result.correct
        assert result.answer == result.record["output"]["answer"]  # zero-shot answers too
        assert result.score == float(result.correct) and result.record["scorer"] == "auto"
    for label, score in comparison.scores.items():
        marks = [r.score for r in comparison if r.variant == label]
        assert score == sum(marks) / len(marks)
    frame = comparison.to_pandas()
    assert list(frame.columns) == [
        "variant",
        "strategy",
        "model",
        "adapter",
        "input",
        "text",
        "answer",
        "tokens",
        "seconds",
        "tokens_per_second",
        "finish_reason",
        "expected",
        "correct",
        "score",
        "compared",
        "verdict",
    ]
    assert len(frame) == 6
    data = json.loads(comparison.to_json())
    assert data["scores"] == comparison.scores and data["results"][0]["input"] == "2 + 2"
    html = comparison.to_html()
    assert "Accuracy" in html and html.count("<tr>") == 4  # header + 3 items
    assert "2 \\+ 2" in comparison.to_markdown()  # markdown specials are escaped


def test_scoring_counts_correct_answers():
    from lmwidgets.core.results import Comparison, Result
    from lmwidgets.prompting.scoring import resolve_scorer, score_comparison

    def result(variant, text, expected, answer=None):
        return Result(
            variant=variant,
            text=text,
            prompt="",
            tokens=1,
            seconds=1,
            record={},
            answer=answer,
            expected=expected,
            input="q",
        )

    comparison = Comparison(
        [
            result("a", "It is 4.", "4", answer="4"),
            result("b", "x", "6", answer="6"),
            result("a", "five", "6", answer="five"),
            result("b", "y", None, answer="y"),
        ]
    )
    score_comparison(comparison, resolve_scorer("exact"))
    assert comparison.scores == {"a": 0.5, "b": 1.0}
    assert [r.correct for r in comparison] == [True, True, False, None]
    assert [r.score for r in comparison] == [1.0, 1.0, 0.0, None]
    assert [r.compared for r in comparison] == ["4", "6", "five", None]
    assert [r.record.get("scorer") for r in comparison] == ["exact"] * 4


def test_dataset_item_columns_win_over_variables(tiny):
    result = run(
        text="{input} / {extra} / {other}",
        dataset=[{"input": "q1", "extra": "e1"}],
        variables={"input": "NO", "other": "o"},
    )[0]
    assert "q1 / e1 / o<|im_end|>" in result.prompt


# Bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategy": "tree-of-thought"}, lmwidgets.StrategyError, "Unknown strategy"),
        ({"compare": "zero-shot,nope"}, lmwidgets.StrategyError, "nope"),
        ({"compare": "cot,cot"}, lmwidgets.StrategyError, "more than once"),
        ({"compare": " , "}, lmwidgets.StrategyError, "at least one"),
        ({"strategy": "cot", "compare": "cot"}, lmwidgets.StrategyError, "not both"),
        ({"strategy": "few-shot"}, lmwidgets.ExamplesError, "--examples"),
        (
            {"strategy": "few-shot", "examples": PAIRS, "shots": 0},
            lmwidgets.ExamplesError,
            "--shots 0",
        ),
        ({"strategy": "few-shot", "examples": "not examples"}, lmwidgets.ExamplesError, "list of"),
        ({"strategy": "few-shot", "examples": []}, lmwidgets.ExamplesError, "empty"),
        ({"strategy": "few-shot", "examples": [("a",)]}, lmwidgets.ExamplesError, r"examples\[0\]"),
        (
            {"strategy": "few-shot", "examples": [{"input": "a"}]},
            lmwidgets.ExamplesError,
            "'output'",
        ),
        (
            {"strategy": "self-consistency", "samples": 0},
            lmwidgets.InvalidArgumentError,
            "--samples",
        ),
        ({"shots": -1, "examples": PAIRS}, lmwidgets.InvalidArgumentError, "--shots"),
        ({"batch_size": 0}, lmwidgets.InvalidArgumentError, "--batch-size"),
        ({"dataset": [{"question": "x"}]}, lmwidgets.DatasetError, "no 'input' column"),
        ({"dataset": pd.DataFrame({"q": [1]})}, lmwidgets.DatasetError, "no 'input' column"),
        ({"dataset": []}, lmwidgets.DatasetError, "empty"),
        ({"dataset": "items"}, lmwidgets.DatasetError, "DataFrame"),
        ({"dataset": ["just a string"]}, lmwidgets.DatasetError, r"dataset\[0\]"),
    ],
)
def test_bad_input_before_generation(tiny, monkeypatch, kwargs, error, match):
    import lmwidgets.engines.transformers.generation as generation

    monkeypatch.setattr(
        generation, "generate_batch", lambda *a, **k: pytest.fail("generation started")
    )
    with pytest.raises(error, match=match):
        run(**kwargs)


def test_normalize_examples_keeps_order_and_rationale():
    examples = normalize_examples([("a", "b", "why"), {"input": 1, "output": 2}])
    assert [(e.input, e.output, e.rationale) for e in examples] == [
        ("a", "b", "why"),
        ("1", "2", None),
    ]


def test_magic_flags(shell, tiny_dir):
    shell.run_cell(f"%lm load {tiny_dir} --as lmw_s")
    shell.user_ns["lmw_pairs"] = PAIRS
    shell.user_ns["lmw_data"] = DATA
    assert shell.run_cell(
        "%%prompt -c zero-shot,few-shot -e lmw_pairs -k 1 -n 3 --out lmw_cmp\n7 + 8?"
    ).success
    assert shell.user_ns["lmw_cmp"].variants == ["zero-shot", "few-shot"]
    assert shell.run_cell(
        "%%prompt -c zero-shot,cot -d lmw_data -n 3 --out lmw_ds\nCompute {input}"
    ).success
    assert len(shell.user_ns["lmw_ds"]) == 6
    assert shell.run_cell(
        '%%prompt --strategy cot --cot-instruction "Go slow." -n 2 --out lmw_c\nq'
    ).success
    assert "Go slow." in shell.user_ns["lmw_c"][0].prompt
    missing = shell.run_cell("%%prompt --strategy few-shot --examples lmw_missing\nq")
    assert isinstance(missing.error_in_exec, lmwidgets.ExamplesError)
    assert "lmw_missing" in str(missing.error_in_exec)
    missing = shell.run_cell("%%prompt --dataset lmw_nothing\n{input}")
    assert isinstance(missing.error_in_exec, lmwidgets.DatasetError)
