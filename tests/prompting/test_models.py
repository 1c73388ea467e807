"""Models as a comparison axis: ``--models a,b`` (in-kernel, scripted and served alike)."""

import threading

import pytest

import lmwidgets


@pytest.fixture
def two(registry):
    small = lmwidgets.load_model(
        engine="scripted", name="small", replies={"*": "small answer. The answer is 1."}
    )
    big = lmwidgets.load_model(
        engine="scripted",
        name="big",
        replies={"*": "big answer. The answer is 2."},
        adapters={"loud": str.upper},
    )
    return small, big


def ask(text, **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_one_column_per_model_each_batched_on_its_model(two):
    small, big = two
    cmp = ask("Hi", models="small,big")
    assert cmp.variants == ["small", "big"]
    assert [r.text for r in cmp] == [
        "small answer. The answer is 1.",
        "big answer. The answer is 2.",
    ]
    assert [r.model for r in cmp] == ["small", "big"]
    assert [r.record["model"]["name"] for r in cmp] == ["small", "big"]
    assert len(small.calls) == 1 and len(big.calls) == 1
    frame = cmp.to_pandas()
    assert list(frame["model"]) == ["small", "big"]


def test_models_by_strategies_grid_and_dataset_scores(two):
    cmp = ask("Q", models="small,big", compare="zero-shot,cot")
    assert cmp.variants == [
        "small · zero-shot",
        "big · zero-shot",
        "small · cot",
        "big · cot",
    ]
    assert len(two[0].calls) == 1 and len(two[0].calls[0]) == 2  # both strategies, one batch
    items = [{"input": "a", "expected": "1"}, {"input": "b", "expected": "2"}]
    scored = ask("{input}", models="small,big", compare="zero-shot,cot", dataset=items)
    assert scored.scores == {
        "small · zero-shot": 0.5,
        "big · zero-shot": 0.5,
        "small · cot": 0.5,
        "big · cot": 0.5,
    }


def test_adapters_run_on_the_model_that_has_them(two, registry):
    cmp = ask("Hi", models="small,big", adapters="base,loud")
    assert cmp.variants == ["small · base", "big · base", "big · loud"]
    assert cmp["big · loud"].text == "BIG ANSWER. THE ANSWER IS 2."
    lmwidgets.load_model(engine="scripted", name="other", adapters={"loud": str.lower})
    with pytest.raises(lmwidgets.AdapterError, match="exactly one of the models"):
        ask("Hi", models="big,other", adapters="loud")
    with pytest.raises(lmwidgets.AdapterError, match="none of small, big"):
        ask("Hi", models="small,big", adapters="quiet")
    with pytest.raises(lmwidgets.StrategyError, match="--adapters base,NAME"):
        ask("Hi", models="small,big", adapter="loud")


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"models": "small,small"}, lmwidgets.StrategyError, "more than once"),
        ({"models": " , "}, lmwidgets.StrategyError, "at least one"),
        ({"models": "small,nope"}, lmwidgets.UnknownModelError, "nope"),
        ({"models": "small,big", "model": "small"}, lmwidgets.StrategyError, "not both"),
    ],
)
def test_bad_model_lists_fail_before_anything_runs(two, options, error, match):
    with pytest.raises(error, match=match):
        ask("Hi", **options)
    assert two[0].calls == [] and two[1].calls == []


def test_different_models_run_at_the_same_time(registry):
    """Each engine gets its own worker: the slow model does not hold the fast one back."""
    started = {}
    both = threading.Barrier(2, timeout=5)

    def replies(name):
        def answer(text, adapter):
            started[name] = True
            both.wait()  # deadlocks (and fails) unless the two models generate concurrently
            return f"{name} done"

        return answer

    lmwidgets.load_model(engine="scripted", name="a", replies=replies("a"))
    lmwidgets.load_model(engine="scripted", name="b", replies=replies("b"))
    cmp = ask("Hi", models="a,b")
    assert [r.text for r in cmp] == ["a done", "b done"]


def test_a_failing_model_keeps_the_other_models_columns(registry):
    lmwidgets.load_model(engine="scripted", name="ok", replies={"*": "fine and complete"})
    lmwidgets.load_model(engine="scripted", name="bad", replies={"*": "x y z"}, fail_after=1)
    with pytest.raises(lmwidgets.OutOfMemoryError) as caught:
        ask("Hi", models="ok,bad")
    partial = caught.value.partial
    assert partial["ok"].text == "fine and complete" and partial["ok"].complete
    assert partial["bad"].text == "x" and partial["bad"].finish_reason == "error"


def test_transformers_model_beside_a_scripted_one(tiny):
    lmwidgets.load_model(engine="scripted", name="script", replies={"*": "scripted"})
    alone = ask("Hello", model="tiny", max_new_tokens=6).text
    cmp = ask("Hello", models="tiny,script", max_new_tokens=6)
    assert cmp["tiny"].text == alone and cmp["script"].text == "scripted"
    assert cmp["tiny"].record["model"]["engine"] == "transformers"
    assert cmp["script"].record["model"]["engine"] == "scripted"
