"""The user's own variations as axes: prompt wordings, system prompts, template fields,
temperature and top-p sweeps, trials; their product, labels, coordinates, records and errors
(scripted engine: no weights)."""

from __future__ import annotations

import pytest

import lmwidgets
from lmwidgets.errors import (
    DatasetError,
    InvalidArgumentError,
    LmWidgetsError,
    PromptError,
    StrategyError,
)
from lmwidgets.prompting.variations import split_prompt_variants


@pytest.fixture
def echo(registry):
    """A scripted model that echoes the user's last message (and says its system prompt)."""

    def reply(text, adapter):
        turns = dict(part.split("|>\n", 1) for part in text.split("<|")[1:])
        system = turns.get("system", "-").strip()
        return f"[{system}] {turns['user'].strip()}"

    return lmwidgets.load_model(engine="scripted", name="echo", replies=reply)


def run(text="Hello", **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_cell_variants_split_on_dash_lines_and_keep_markdown_rules():
    text = "Say hi.\n---\nstill A\n--- polite\nPlease say hello.\n--- terse\nHi."
    assert split_prompt_variants(text) == [
        ("A", "Say hi.\n---\nstill A"),
        ("polite", "Please say hello."),
        ("terse", "Hi."),
    ]
    assert split_prompt_variants("one prompt\n---\nmore") == [("A", "one prompt\n---\nmore")]
    assert split_prompt_variants("--- x\nfirst\n--- y\nsecond") == [
        ("x", "first"),
        ("y", "second"),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("--- a\none\n--- a\ntwo", "'a' more than once"),
        ("--- a\none\n--- b\n  \n", "variant 'b' is empty"),
        ("first\n--- A\nsecond", "'A' more than once"),
    ],
)
def test_bad_cell_variants_are_errors(echo, text, message):
    with pytest.raises(PromptError, match=message):
        run(text)


def test_prompt_variants_are_columns_with_their_text(echo):
    comparison = run("Say hi to {who}.\n--- B\nGreet {who}.", variables={"who": "Ann"})
    assert [r.variant for r in comparison.results] == ["A", "B"]
    assert comparison["A"].text == "[-] Say hi to Ann."
    assert comparison["B"].text == "[-] Greet Ann."
    assert comparison["B"].record["axes"]["prompt"] == "B"
    assert comparison["B"].record["prompt"]["template"] == "Greet {who}."


def test_prompts_variable_dict_or_list(echo):
    comparison = run("", prompts={"short": "Hi.", "long": "Hello there."})
    assert [r.variant for r in comparison.results] == ["short", "long"]
    comparison = run("", prompts=["One.", "Two.", "Three."])
    assert [r.variant for r in comparison.results] == ["A", "B", "C"]
    assert comparison["C"].text == "[-] Three."
    with pytest.raises(PromptError, match="not both"):
        run("body", prompts=["One."])
    with pytest.raises(InvalidArgumentError, match="dict"):
        run("", prompts="One.")
    with pytest.raises(PromptError, match="not text"):
        run("", prompts=[1, 2])


def test_system_variants_include_none(echo):
    comparison = run(
        "Hi.",
        systems={"none": "ignored", "pirate": "Talk like a pirate, {who}."},
        variables={"who": "Ann"},
    )
    assert [r.variant for r in comparison.results] == ["none", "pirate"]
    assert comparison["none"].text == "[-] Hi."
    assert comparison["pirate"].text == "[Talk like a pirate, Ann.] Hi."
    listed = run("Hi.", systems=[None, "Be brief."])
    assert [r.text for r in listed.results] == ["[-] Hi.", "[Be brief.] Hi."]
    with pytest.raises(InvalidArgumentError, match="not both"):
        run("Hi.", system="x", systems=["a"])
    with pytest.raises(InvalidArgumentError, match="empty"):
        run("Hi.", systems={})
    with pytest.raises(InvalidArgumentError, match="give a text or None"):
        run("Hi.", systems={"a": 3})


def test_each_field_gives_one_column_per_value_and_their_product(echo):
    names = {"who": ["Ann", "Bob"], "tone": {"warm": "warmly", "cold": "coldly"}}
    comparison = run("Greet {who} {tone}.", variables=names, each="who,tone")
    labels = [r.variant for r in comparison.results]
    assert labels == [
        "who=Ann · tone=warm",
        "who=Ann · tone=cold",
        "who=Bob · tone=warm",
        "who=Bob · tone=cold",
    ]
    assert comparison["who=Bob · tone=cold"].text == "[-] Greet Bob coldly."
    frame = comparison.to_pandas()
    assert list(frame["who"]) == ["Ann", "Ann", "Bob", "Bob"]
    assert list(frame["tone"]) == ["warm", "cold", "warm", "cold"]


@pytest.mark.parametrize(
    ("variables", "each", "message"),
    [
        ({"who": "Ann"}, "who", "list"),
        ({"who": []}, "who", "empty"),
        ({"who": ["a"]}, "whom", "no {whom} field"),
        ({}, "who", "no variable"),
        ({"who": ["a"]}, "who,who", "more than once"),
    ],
)
def test_bad_each_is_an_error_before_anything_runs(echo, variables, each, message):
    with pytest.raises(InvalidArgumentError, match=message):
        run("Hi {who}.", variables=variables, each=each)


def test_temperature_sweep_and_trials_record_seeds(echo):
    comparison = run("Pick.", temperatures="0,0.7", trials=3, seed=5)
    got = [
        (r.variant, r.record["generation"]["seed"], r.record["generation"]["temperature"])
        for r in comparison.results
    ]
    assert got == [
        ("T=0 · trial 1", 5, 0.0),
        ("T=0.7 · trial 1", 5, 0.7),
        ("T=0.7 · trial 2", 6, 0.7),
        ("T=0.7 · trial 3", 7, 0.7),
    ]
    assert any("greedy columns" in note for note in comparison.notes)
    assert comparison.spread() == ["T=0.7: [-] Pick ×3 (3 trials)"]
    frame = comparison.to_pandas()
    assert list(frame["temperature"]) == [0.0, 0.7, 0.7, 0.7]
    assert list(frame["trial"]) == [1, 1, 2, 3]


def test_trials_without_a_seed_draw_one_and_say_so(echo):
    comparison = run("Pick.", temperature=0.9, trials=2)
    seeds = [r.record["generation"]["seed"] for r in comparison.results]
    assert seeds[1] == seeds[0] + 1
    assert all(r.record["generation"]["seed_given"] is False for r in comparison.results)


def test_top_p_sweep_labels_and_settings(echo):
    comparison = run("Pick.", temperature=0.5, top_ps=[0.5, 1], seed=1)
    assert [r.variant for r in comparison.results] == ["top-p=0.5", "top-p=1"]
    assert [r.record["generation"]["top_p"] for r in comparison.results] == [0.5, 1.0]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"temperatures": "0,x"}, InvalidArgumentError, "not a number"),
        ({"temperatures": "0.5,0.5"}, InvalidArgumentError, "more than once"),
        ({"temperatures": "-1"}, InvalidArgumentError, "temperature"),
        ({"temperatures": "0,1", "temperature": 0.5}, InvalidArgumentError, "not both"),
        ({"top_ps": "0"}, InvalidArgumentError, "top"),
        ({"trials": 0}, InvalidArgumentError, "between 1"),
        ({"trials": 2.5}, InvalidArgumentError, "whole number"),
        ({"columns": "prompt"}, StrategyError, "does not vary"),
        ({"columns": "tempreature", "temperatures": "0,1"}, StrategyError, "temperature"),
    ],
)
def test_bad_sweeps_and_columns_are_errors(echo, options, error, message):
    with pytest.raises(error, match=message):
        run("Hi.", **options)


def test_everything_combines_with_strategies_and_models(registry, echo):
    lmwidgets.load_model(engine="scripted", name="other")
    comparison = run(
        "Q1\n--- B\nQ2", models="echo,other", compare="zero-shot,cot", temperatures="0,1", seed=3
    )
    assert len(comparison.results) == 2 * 2 * 2 * 2
    first = comparison.results[0]
    assert first.coords == {
        "prompt": "A",
        "strategy": "zero-shot",
        "model": "echo",
        "adapter": "base",
        "temperature": "0",
    }
    assert first.variant == "echo · A · zero-shot · T=0"
    assert len({r.variant for r in comparison.results}) == 16


def test_a_product_past_the_limits_asks_for_confirm(echo):
    values = {"n": list(range(40))}
    with pytest.raises(LmWidgetsError, match="confirm"):
        run("Count {n}.", variables=values, each="n")
    assert len(run("Count {n}.", variables=values, each="n", confirm=True).results) == 40


def test_dataset_placeholder_typo_is_an_error_naming_the_column(echo):
    items = [{"input": "France", "expected": "Paris"}]
    with pytest.raises(DatasetError, match=r"Did you mean \{input\}"):
        run("Capital of {inptu}?", dataset=items)
    # Notebook variables and --each fields are fine in a dataset template.
    comparison = run("{greet}: capital of {input}?", dataset=items, variables={"greet": "Hi"})
    assert comparison.results[0].text == "[-] Hi: capital of France?"


def test_few_shot_examples_go_through_the_dataset_template(echo):
    items = [{"input": "Canada", "expected": "Ottawa"}]
    comparison = run(
        "What is the capital of {input}?",
        dataset=items,
        compare="few-shot",
        examples=[("Germany", "Berlin")],
    )
    messages = comparison.results[0].record["prompt"]["messages"]
    assert messages[0]["content"] == "What is the capital of Germany?"
    assert messages[1]["content"] == "Berlin"
    assert messages[-1]["content"] == "What is the capital of Canada?"


def test_prompt_variants_on_a_dataset_are_grid_columns(echo):
    items = [{"input": "a", "expected": "x"}, {"input": "b", "expected": "y"}]
    comparison = run("Q {input}\n--- B\nR {input}", dataset=items)
    assert [r.variant for r in comparison.results] == ["A", "B", "A", "B"]
    assert set(comparison.scores) == {"A", "B"}


def test_rerun_reproduces_every_column(echo):
    comparison = run(
        "Hi {who}\n--- B\nYo {who}",
        variables={"who": ["a", "b"]},
        each="who",
        temperatures="0,0.8",
        seed=2,
    )
    report = lmwidgets.rerun(comparison, display=False)
    assert report.matched and len(report.rows) == len(comparison.results) == 8
    again = [r for c in report.comparisons for r in c.results]
    assert [r.text for r in again] == [r.text for r in comparison.results]
    assert [r.coords for r in again] == [r.coords for r in comparison.results]
    assert [r.record["generation"]["seed"] for r in again] == [
        r.record["generation"]["seed"] for r in comparison.results
    ]


def test_a_failing_reply_function_is_a_generation_error_not_out_of_memory(registry):
    def broken(text, adapter):
        raise ValueError("my reply function broke")

    lmwidgets.load_model(engine="scripted", name="broken", replies=broken)
    with pytest.raises(lmwidgets.errors.GenerationError) as caught:
        run("Hi.")
    assert "ValueError: my reply function broke" in str(caught.value)
    assert "memory" not in str(caught.value).lower()
    assert caught.value.partial is not None
