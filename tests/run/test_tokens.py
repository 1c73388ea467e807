"""Token details (``--logprobs K``): filled per column, bounded in records, exported per token,
answer confidence, the flag and its config default, and what is refused before anything runs.

All on the scripted engine, whose log-probabilities are made up but deterministic.
"""

import json
import math

import pytest

import lmwidgets
from lmwidgets.engines.base import MAX_LOGPROBS, GenerationSettings
from lmwidgets.run import records as records_module
from lmwidgets.run.records import bounded_tokens, validate_records
from lmwidgets.run.tokens import answer_confidence

REPLIES = {"7 + 8": "Seven plus eight. The answer is 15.", "*": "I do not know."}


@pytest.fixture
def scripted(registry):
    return lmwidgets.load_model(engine="scripted", name="script", replies=REPLIES)


def ask(text="What is 7 + 8?", **options):
    return lmwidgets.prompt(text, display=False, **options)


def test_tokens_detail_is_filled_per_column(scripted):
    comparison = ask(compare="zero-shot,cot", logprobs=3)
    for result in comparison:
        tokens = result.tokens_detail
        assert "".join(t["text"] for t in tokens) == result.text
        assert len(tokens) == result.tokens
        for token in tokens:
            assert set(token) == {"text", "id", "logprob", "top"}
            assert len(token["top"]) == 3 and token["top"][0]["id"] == token["id"]
            assert token["logprob"] <= 0
        assert result.record["generation"]["logprobs"] == 3
        assert result.record["output"]["tokens_detail"][0]["text"] == tokens[0]["text"]
    validate_records(comparison.records)


def test_without_logprobs_nothing_changes(scripted):
    result = ask()[0]
    assert result.tokens_detail == [] and result.confidence is None
    assert "logprobs" not in result.record["generation"]
    assert not {"tokens_detail", "confidence", "tokens_truncated"} & set(result.record["output"])


def test_records_keep_tokens_bounded(scripted, monkeypatch):
    monkeypatch.setattr(records_module, "MAX_RECORD_TOKENS", 4)
    result = ask(logprobs=8)[0]
    output = result.record["output"]
    assert len(result.tokens_detail) == 7 and len(result.tokens_detail[0]["top"]) == 8
    assert len(output["tokens_detail"]) == 4 and output["tokens_truncated"] == 3
    assert output["tokens_top_kept"] == records_module.MAX_RECORD_ALTERNATIVES
    assert all(len(t["top"]) == 5 for t in output["tokens_detail"])
    logprobs = [t["logprob"] for t in output["tokens_detail"]]
    assert logprobs == [round(t["logprob"], 4) for t in result.tokens_detail[:4]]
    assert logprobs != [t["logprob"] for t in result.tokens_detail[:4]]  # rounded, not copied
    validate_records([result.record])


def test_bounded_tokens_of_a_long_answer():
    token = {"text": " a", "id": 1, "logprob": -0.123456789, "top": []}
    fields = bounded_tokens([token] * 2_500)
    assert len(fields["tokens_detail"]) == 2_000 and fields["tokens_truncated"] == 500
    assert fields["tokens_detail"][0]["logprob"] == -0.1235
    assert "tokens_top_kept" not in fields
    assert bounded_tokens([{**token, "logprob": -math.inf}])["tokens_detail"][0]["logprob"] == -1e9
    record_size = len(json.dumps(bounded_tokens([token] * 10)))
    assert record_size < 10 * 80


def test_to_pandas_tokens_gives_one_row_per_token(scripted):
    comparison = ask(compare="zero-shot,cot", logprobs=2)
    frame = comparison.to_pandas(tokens=True)
    assert list(frame.columns) == [
        "variant",
        "input",
        "position",
        "token",
        "id",
        "logprob",
        "prob",
        "top",
    ]
    assert len(frame) == sum(len(r.tokens_detail) for r in comparison)
    first = frame.iloc[0]
    token = comparison[0].tokens_detail[0]
    assert (first["variant"], first["position"], first["token"]) == ("zero-shot", 0, "Seven")
    assert first["prob"] == pytest.approx(math.exp(token["logprob"]))
    alt = token["top"][1]
    assert first["top"] == (
        f"Seven {math.exp(token['logprob']):.2f} | {alt['text']} {math.exp(alt['logprob']):.2f}"
    )
    assert list(frame[frame.variant == "cot"].position) == list(range(7))
    assert "confidence" in comparison.to_pandas().columns


def test_to_pandas_tokens_without_tokens_says_how_to_get_them(scripted):
    with pytest.raises(lmwidgets.InvalidArgumentError, match="--logprobs K"):
        ask().to_pandas(tokens=True)
    assert "confidence" not in ask().to_pandas().columns


def test_confidence_is_the_probability_of_the_answer_tokens(scripted):
    result = ask(logprobs=1)[0]
    assert result.answer == "15"
    last = result.tokens_detail[-1]  # " 15." covers the answer
    assert last["text"] == " 15."
    assert result.confidence == pytest.approx(math.exp(last["logprob"]))
    assert result.record["output"]["confidence"] == round(result.confidence, 4)


def test_confidence_spans_every_token_of_the_answer():
    tokens = [
        {"text": "It is", "logprob": -0.1},
        {"text": " New", "logprob": -0.5},
        {"text": " York", "logprob": -0.25},
        {"text": ". New", "logprob": -2.0},
    ]
    # the last occurrence wins: " New" of the last token only
    assert answer_confidence("New", tokens) == pytest.approx(math.exp(-2.0))
    assert answer_confidence("New York", tokens) == pytest.approx(math.exp(-0.75))
    assert answer_confidence("Boston", tokens) is None
    assert answer_confidence(None, tokens) is None
    assert answer_confidence("New", []) is None


def test_self_consistency_confidence_is_the_vote_share(scripted):
    result = ask(strategy="self-consistency", samples=3)[0]
    assert result.confidence == result.extras["agreement"] == 1.0
    with_tokens = ask(strategy="self-consistency", samples=3, logprobs=2)[0]
    assert with_tokens.confidence == 1.0
    assert "".join(t["text"] for t in with_tokens.tokens_detail) == with_tokens.text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "at least 0"),
        (MAX_LOGPROBS + 1, "at most 20"),
        (2.5, "whole number"),
        ("5", "whole number"),
        (True, "whole number"),
    ],
)
def test_logprobs_must_be_0_to_20(scripted, value, message):
    with pytest.raises(lmwidgets.InvalidArgumentError, match=f"--logprobs must be.*{message}"):
        ask(logprobs=value)
    assert scripted.calls == []  # refused before anything ran
    with pytest.raises(lmwidgets.InvalidArgumentError):
        GenerationSettings(logprobs=value)


def test_a_model_without_token_probabilities_is_refused_by_name(registry):
    lmwidgets.load_model(engine="scripted", name="plain", token_logprobs=False)
    with pytest.raises(lmwidgets.InvalidArgumentError, match=r"plain \(scripted engine\)"):
        ask(logprobs=2)
    assert registry.get("plain").calls == []
    assert ask(logprobs=0).text  # without it, it runs


def test_a_mixed_comparison_names_the_model_that_cannot(scripted, registry):
    lmwidgets.load_model(engine="scripted", name="plain", token_logprobs=False)
    with pytest.raises(lmwidgets.InvalidArgumentError, match="plain") as error:
        ask(models="script,plain", logprobs=2)
    assert "script " not in str(error.value)
    assert scripted.calls == []


def test_the_tokens_toggle_acts_on_its_own_view_only(scripted, capsys):
    from lmwidgets.notebook.live import widget_of

    got = []
    first = lmwidgets.prompt(
        "What is 7 + 8?", display=True, compare="zero-shot,cot", on_rerun=got.append
    )
    widget = widget_of(first)
    assert first[0].tokens_detail == [] and widget.can_get_tokens
    widget.token_view = True  # the toggle: this view's own state
    later = lmwidgets.prompt("What is 7 + 8?", display=True)
    assert later[0].tokens_detail == [] and "logprobs" not in later[0].record["generation"]
    assert not widget_of(later).token_view  # a later cell opens unshaded
    # "get them": this comparison again, in the same view, same seeds, with token data.
    widget._on_message(widget, {"type": "tokens"}, [])
    (again,) = got
    assert widget_of(again) is widget and widget.status == "done" and widget.message == ""
    assert [r.text for r in again] == [r.text for r in first]
    assert all(r.tokens_detail and r.record["generation"]["logprobs"] == 5 for r in again)
    assert all(cell["tokens"] for cell in widget.columns)
    assert lmwidgets.prompt("What is 7 + 8?", display=False)[0].tokens_detail == []
    capsys.readouterr()


def test_getting_tokens_says_why_not_in_the_view(registry, capsys):
    from lmwidgets.notebook.live import widget_of

    lmwidgets.load_model(engine="scripted", name="plain", token_logprobs=False)
    widget = widget_of(lmwidgets.prompt("What is 7 + 8?", display=True))
    widget._on_message(widget, {"type": "tokens"}, [])
    assert widget.message.startswith("Cannot get the token probabilities:")
    assert "plain" in widget.message and widget.status == "done"
    capsys.readouterr()


def test_a_view_whose_model_was_unloaded_says_so_and_keeps_its_texts(tiny, capsys):
    """ "get them" and a fork from the view after `%lm unload`: the freed model failed half way
    ("'NoneType' object is not callable") and left the view running with its texts gone."""
    from lmwidgets.notebook.live import widget_of

    plain = widget_of(lmwidgets.prompt("Say hi.", display=True, max_new_tokens=3))
    shaded = widget_of(lmwidgets.prompt("Say hi.", display=True, max_new_tokens=3, logprobs=2))
    texts = [[cell["text"] for cell in w.columns] for w in (plain, shaded)]
    lmwidgets.unload_model("tiny")
    plain._on_message(plain, {"type": "tokens"}, [])
    fork = {"type": "fork", "index": 0, "position": 1, "token": {"id": None, "text": "x"}}
    shaded._on_message(shaded, fork, [])
    for widget, before, what in ((plain, texts[0], "get"), (shaded, texts[1], "fork")):
        assert "'tiny' was unloaded after this run" in widget.message, (what, widget.message)
        assert widget.status == "done", what
        assert [cell["text"] for cell in widget.columns] == before, what
    capsys.readouterr()


def test_rerun_asks_for_the_tokens_again(scripted):
    comparison = ask(compare="zero-shot,cot", logprobs=2)
    report = lmwidgets.rerun(comparison)
    assert report.matched
    again = report.comparisons[0]
    assert [r.tokens_detail for r in again] == [r.tokens_detail for r in comparison]


def test_record_validation_of_token_fields(scripted):
    record = ask(logprobs=2)[0].record
    good = json.loads(json.dumps(record))
    validate_records([good])
    bad_cases = [
        ("tokens_detail", "no list", "output.tokens_detail must be a list"),
        ("tokens_detail", [{"text": 3, "id": 1, "logprob": -1.0}], r"tokens_detail\[0\].text"),
        ("tokens_detail", [{"text": "a", "id": -1, "logprob": -1.0}], r"tokens_detail\[0\].id"),
        ("tokens_detail", [{"text": "a", "id": 1, "logprob": 0.5}], r"logprob must be a number"),
        (
            "tokens_detail",
            [{"text": "a", "id": 1, "logprob": -1.0, "top": [{"text": "b", "id": "x"}]}],
            r"top\[0\].id",
        ),
        ("tokens_truncated", -3, "tokens_truncated"),
        ("confidence", 1.5, "output.confidence"),
    ]
    for key, value, message in bad_cases:
        broken = json.loads(json.dumps(record))
        broken["output"][key] = value
        with pytest.raises(lmwidgets.RecordError, match=message):
            validate_records([broken])
    broken = json.loads(json.dumps(record))
    broken["generation"]["logprobs"] = 21
    with pytest.raises(lmwidgets.RecordError, match=r"generation\.logprobs"):
        validate_records([broken])


# -- the magics -----------------------------------------------------------------------------------
def _magics(shell):
    return shell.magics_manager.registry["LmMagics"]


def test_logprobs_flag_and_config(shell, scripted):
    assert shell.run_cell("%%prompt --out lmw_t --logprobs 3\nWhat is 7 + 8?").success
    assert len(shell.user_ns["lmw_t"][0].tokens_detail[0]["top"]) == 3
    assert shell.run_cell("%%prompt --out lmw_t\nWhat is 7 + 8?").success
    assert shell.user_ns["lmw_t"][0].tokens_detail == []
    magics = _magics(shell)
    try:
        shell.run_line_magic("config", "LmMagics.logprobs = 2")
        assert shell.run_cell("%%prompt --out lmw_t\nWhat is 7 + 8?").success
        assert len(shell.user_ns["lmw_t"][0].tokens_detail[0]["top"]) == 2
        assert shell.run_cell("%%prompt --out lmw_t --logprobs 0\nWhat is 7 + 8?").success
        assert shell.user_ns["lmw_t"][0].tokens_detail == []
    finally:
        magics.logprobs = 0


@pytest.mark.parametrize("value", ["-1", "21"])
def test_logprobs_flag_out_of_range_fails_the_cell(shell, scripted, capsys, value):
    result = shell.run_cell(f"%%prompt --logprobs {value}\nhi")
    assert isinstance(result.error_in_exec, lmwidgets.InvalidArgumentError)
    assert "--logprobs" in str(result.error_in_exec)
    assert scripted.calls == []


def test_logprobs_flag_must_be_a_number(shell, scripted, capsys):
    assert not shell.run_cell("%%prompt --logprobs many\nhi").success
    assert scripted.calls == []


def test_logprobs_flag_on_a_model_without_them(shell, registry, capsys):
    lmwidgets.load_model(engine="scripted", name="plain", token_logprobs=False)
    result = shell.run_cell("%%prompt --logprobs 2\nhi")
    assert isinstance(result.error_in_exec, lmwidgets.InvalidArgumentError)
    assert "plain" in str(result.error_in_exec)


def test_an_unforeseen_failure_of_a_rerun_shows_the_earlier_run_again(tiny, capsys, monkeypatch):
    """Whatever fails inside a view's own re-run, the view must not stay 'running' with its
    texts erased: it shows the run it showed before, and the message says what failed."""
    from lmwidgets.notebook.live import widget_of
    from lmwidgets.run import runner

    widget = widget_of(lmwidgets.prompt("Say hi.", display=True, max_new_tokens=3))
    before = [cell["text"] for cell in widget.columns]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(runner, "run_variants", broken)  # a failure inside the re-run itself
    widget._on_message(widget, {"type": "tokens"}, [])
    assert "disk on fire" in widget.message
    assert widget.status == "done"
    assert [cell["text"] for cell in widget.columns] == before
    monkeypatch.undo()
    widget._on_message(widget, {"type": "tokens"}, [])  # and the view still works
    assert widget.status == "done" and all(cell["tokens"] for cell in widget.columns), (
        widget.message
    )
    capsys.readouterr()
