"""Re-running saved records: same text on the same weights, clear errors otherwise."""

import json
from pathlib import Path

import pytest

import lmwidgets
from lmwidgets.run.records import RECORD_MIME


def _notebook_with(comparison, path):
    payload = comparison.mimebundle()[RECORD_MIME]
    path.write_text(
        json.dumps(
            {
                "cells": [
                    {
                        "cell_type": "code",
                        "outputs": [
                            {"output_type": "display_data", "data": {RECORD_MIME: payload}}
                        ],
                    }
                ]
            }
        )
    )
    return path


def test_rerun_greedy_comparison_matches(tiny):
    original = lmwidgets.prompt("Hello", compare="zero-shot,cot", max_new_tokens=10, display=False)
    report = lmwidgets.rerun(original)
    assert report.matched and report.summary() == "2 of 2 texts match"
    assert [row.variant for row in report.rows] == ["zero-shot", "cot"]


def test_rerun_reproduces_sampling_with_the_recorded_seed(tiny):
    original = lmwidgets.prompt(
        "Story",
        compare="zero-shot,self-consistency",
        samples=3,
        temperature=0.9,
        max_new_tokens=10,
        display=False,
    )
    assert original[1].record["generation"]["seed_given"] is False  # a seed was drawn and recorded
    report = lmwidgets.rerun(original)
    assert report.matched, [(r.old_text, r.new_text) for r in report.rows]


def test_rerun_from_a_saved_notebook_and_json(tiny, tmp_path):
    original = lmwidgets.prompt(
        "Hi {x}",
        variables={"x": "there"},
        dataset=[{"input": "a"}, {"input": "b"}],
        max_new_tokens=6,
        display=False,
    )
    report = lmwidgets.rerun(str(_notebook_with(original, tmp_path / "nb.ipynb")))
    assert report.matched and len(report.rows) == 2 and report.rows[1].input == "b"
    exported = tmp_path / "cmp.json"
    exported.write_text(original.to_json())
    assert lmwidgets.rerun(str(exported)).matched


def test_rerun_reports_a_changed_text(tiny):
    original = lmwidgets.prompt("Hello", max_new_tokens=8, display=False)
    record = json.loads(json.dumps(original[0].record))
    record["output"]["text"] = "something else entirely"
    report = lmwidgets.rerun(record)
    assert not report.matched and report.rows[0].first_difference == 0
    bundle = report._repr_mimebundle_()
    assert "0 of 1 texts match" in bundle["text/plain"] and "✗" in bundle["text/html"]


def test_rerun_loads_the_model_from_the_recorded_source(tiny_dir, registry):
    lmwidgets.load_model(str(tiny_dir), name="first")
    original = lmwidgets.prompt("Hello", max_new_tokens=6, display=False)
    lmwidgets.unload_model("first")
    report = lmwidgets.rerun(original)
    assert report.matched and len(registry) == 1


def test_rerun_notes_different_weights(tiny, tiny_plain_dir):
    original = lmwidgets.prompt("Hello", max_new_tokens=4, display=False)
    record = json.loads(json.dumps(original[0].record))
    record["model"]["weights_sha256"] = "0" * 64
    report = lmwidgets.rerun(record)
    assert any("differ from the recorded" in note for note in report.notes)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (42, "Cannot find run records .*not int 42"),
        ([], "No run records"),
        ({"prompt": {"messages": []}}, "Record 0 is malformed: model must be a mapping"),
        (
            {
                "prompt": {"rendered": "x"},
                "model": {"source": "default", "weights_sha256": None},
                "generation": {},
            },
            "Record 0 is malformed: strategy must be a mapping, not missing",
        ),
    ],
)
def test_rerun_bad_input(tiny, source, match):
    with pytest.raises(lmwidgets.RecordError, match=match):
        lmwidgets.rerun(source)


def _record_on(source, **changes):
    """A complete record of a greedy zero-shot run on the in-kernel model at ``source``."""
    record = {
        "schema": 2,
        "run": "r1",
        "variant": "zero-shot",
        "model": {"engine": "transformers", "source": str(source), "weights_sha256": "0" * 64},
        "adapter": None,
        "strategy": {"name": "zero-shot"},
        "prompt": {"messages": [{"role": "user", "content": "Hello"}], "media": []},
        "generation": {"max_new_tokens": 4, "temperature": 0.0, "top_p": 1.0, "seed": None},
        "input": None,
        "output": {"text": "", "text_truncated": False, "answer": None},
    }
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = record
        for key in parents:
            target = target[key]
        target[last] = value
    return record


@pytest.fixture
def no_loading(monkeypatch):
    """Fails the test if anything asks to load a model."""
    from lmwidgets import api

    def refuse(*args, **kwargs):
        raise AssertionError(f"a model was loaded: {args} {kwargs}")

    monkeypatch.setattr(api, "load_model", refuse)


MALFORMED = [
    ({"strategy": "cot"}, "strategy must be a mapping, not str 'cot'"),
    ({"prompt__messages": None}, "prompt.messages must be a non-empty list"),
    ({"generation__max_new_tokens": "many"}, "generation.max_new_tokens must be a whole number"),
    ({"generation__temperature": "warm"}, "generation.temperature must be a number"),
    ({"generation__seed": 1.5}, "generation.seed must be a whole number"),
    ({"schema": 99}, "schema 99, which this lmwidgets does not read"),
    ({"prompt__media": [{"kind": "image", "name": "cat"}]}, r"prompt.media\[0\].sha256"),
]


@pytest.mark.parametrize(("changes", "match"), MALFORMED)
def test_a_malformed_record_fails_before_any_model_is_looked_for(
    registry, tmp_path, no_loading, changes, match
):
    missing = tmp_path / "no-such-model"
    record = _record_on(missing, **changes)
    with pytest.raises(lmwidgets.RecordError, match=match):
        lmwidgets.rerun(record)
    assert len(registry) == 0


def test_the_same_record_well_formed_gets_as_far_as_loading(registry, tmp_path):
    with pytest.raises(lmwidgets.ModelNotFoundError):
        lmwidgets.rerun(_record_on(tmp_path / "no-such-model"))
    assert len(registry) == 0


@pytest.mark.parametrize(("changes", "match"), MALFORMED[:3])
def test_a_malformed_later_record_stops_the_rerun_before_the_first_loads(
    registry, tiny_dir, changes, match
):
    good = _record_on(tiny_dir, run="first")
    bad = _record_on(tiny_dir, run="second", variant="late", **changes)
    with pytest.raises(lmwidgets.RecordError, match=rf"Record 1 \('late'\).*{match}"):
        lmwidgets.rerun([good, bad])
    assert len(registry) == 0  # the first record's model was not loaded
    report = lmwidgets.rerun([good, good])  # well formed: both load and run
    assert len(report.rows) == 2 and len(registry) == 1


def test_rerun_a_json_list_of_records(tiny, tmp_path):
    original = lmwidgets.prompt("Hello", compare="zero-shot,cot", max_new_tokens=6, display=False)
    listed = tmp_path / "records.json"
    listed.write_text(json.dumps(original.records))
    for source in (listed, str(listed), json.dumps(original.records), original.to_json()):
        report = lmwidgets.rerun(source)
        assert report.matched and [r.variant for r in report.rows] == ["zero-shot", "cot"]


def test_rerun_the_v0_1_fixtures_validate_before_loading(registry, no_loading):
    # The re-run itself (on the default model) is tests/run/test_compat.py; here every record
    # passes validation and the first thing rerun does after it is to look for the model.
    from lmwidgets.run.records import load_records, validate_records

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    for name in ("records_v0_1.ipynb", "records_v0_1_comparison.json", "records_v0_1_list.json"):
        validate_records(load_records(fixtures / name))
        with pytest.raises(AssertionError, match="a model was loaded"):
            lmwidgets.rerun(fixtures / name)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("7", "not int 7"),
        ('["a", "b"]', "Item 0 of .* is not a run record"),
        ('{"theme": "dark"}', "Cannot find run records"),
        ('{"nbformat": 4, "metadata": {}}', "Cannot find run records"),
        ("not json at all", "Cannot read"),
    ],
)
def test_rerun_garbage_files(registry, tmp_path, content, match):
    path = tmp_path / "garbage.json"
    path.write_text(content)
    with pytest.raises(lmwidgets.RecordError, match=match):
        lmwidgets.rerun(path)


@pytest.mark.parametrize("source", [3.5, ["a", "b"], [{"prompt": {}}, "x"], object()])
def test_rerun_garbage_values(registry, source):
    with pytest.raises(lmwidgets.RecordError):
        lmwidgets.rerun(source)


def test_rerun_missing_notebook(tmp_path):
    with pytest.raises(lmwidgets.RecordError, match="No notebook"):
        lmwidgets.rerun(str(tmp_path / "none.ipynb"))


def test_rerun_magic(shell, tiny_dir, capsys):
    shell.run_cell(f"%lm load {tiny_dir} --as lmw_rr")
    assert shell.run_cell("%%prompt -n 5 --out lmw_orig\nHello").success
    capsys.readouterr()
    assert shell.run_cell("%lm rerun lmw_orig").success
    assert "1 of 1 texts match" in capsys.readouterr().out
    result = shell.run_cell("%lm rerun")
    assert isinstance(result.error_in_exec, lmwidgets.RecordError)
    result = shell.run_cell("%lm rerun lmw_nothing_called_this")
    assert isinstance(result.error_in_exec, lmwidgets.RecordError)
    assert "no notebook variable or file called 'lmw_nothing_called_this'" in str(
        result.error_in_exec
    )


def test_rerun_magic_reads_files_and_variables_of_any_form(shell, tiny_dir, tmp_path, capsys):
    shell.run_cell(f"%lm load {tiny_dir} --as lmw_rf")
    assert shell.run_cell("%%prompt -n 4 --compare zero-shot,cot --out lmw_o\nHi").success
    original = shell.user_ns["lmw_o"]
    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(original.records))
    shell.user_ns["lmw_json"] = original.to_json()
    shell.user_ns["lmw_list"] = original.records
    capsys.readouterr()
    for line in (f"%lm rerun {listed}", "%lm rerun lmw_json", "%lm rerun lmw_list"):
        assert shell.run_cell(line).success, line
        assert "2 of 2 texts match" in capsys.readouterr().out
    bad = json.loads(json.dumps(original.records))
    bad[1]["strategy"] = "cot"
    shell.user_ns["lmw_bad"] = bad
    result = shell.run_cell("%lm rerun lmw_bad")
    assert isinstance(result.error_in_exec, lmwidgets.RecordError)
    assert "Record 1 ('cot') is malformed: strategy" in str(result.error_in_exec)


# Scoring again (issue 14) ------------------------------------------------------------------------
ANTONYMS = [{"input": "hot", "expected": "cold"}, {"input": "big", "expected": "small"}]


@pytest.fixture
def antonyms(registry):
    """A scripted model that knows one antonym (in a sentence) and misses the other."""
    return lmwidgets.load_model(
        engine="scripted",
        name="lmw_ant",
        replies={"hot": "The opposite of hot is cold.", "big": "large"},
    )


def _scored(**options):
    return lmwidgets.prompt("{input}", dataset=ANTONYMS, display=False, **options)


def test_rerun_scores_again_with_the_recorded_scorer(antonyms):
    for spec, scores in (("auto", [1.0, 0.0]), ("exact", [0.0, 0.0]), ("contains", [1.0, 0.0])):
        original = _scored(score=spec)
        assert [r.score for r in original] == scores
        report = lmwidgets.rerun(original.to_json())
        (comparison,) = report.comparisons
        assert report.matched and [r.score for r in comparison] == scores, spec
        assert [r.record["scorer"] for r in comparison] == [spec, spec]
        assert [(row.old_score, row.new_score) for row in report.rows] == [(s, s) for s in scores]
        assert comparison.scores == original.scores


def test_rerun_of_records_from_before_scorers_scores_by_exact(antonyms):
    records = json.loads(json.dumps(_scored().records))
    for record in records:
        for key in ("scorer", "score", "compared"):
            del record[key]
    report = lmwidgets.rerun(records)
    (comparison,) = report.comparisons
    assert [r.correct for r in comparison] == [False, False]  # the old normalized exact match
    assert comparison[0].record["scorer"] == "exact"


def test_rerun_looks_up_a_recorded_function_in_the_namespace(antonyms):
    def strict(answer, expected, item):
        return answer == expected

    def lenient(answer, expected, item):
        return 0.75

    original = _scored(score="strict", variables={"strict": strict})
    assert original[0].record["scorer"] == "callable:strict"
    assert [r.score for r in original] == [0.0, 0.0]
    report = lmwidgets.rerun(original, namespace={"strict": lenient})  # redefined since
    assert [r.score for r in report.comparisons[0]] == [0.75, 0.75]
    assert report.notes == []


def test_rerun_without_the_recorded_function_keeps_texts_and_says_so(antonyms):
    original = _scored(score=lambda answer, expected, item: True)
    assert original[0].record["scorer"] == "callable:<lambda>"
    report = lmwidgets.rerun(original, namespace={})
    assert report.matched and len(report.rows) == 2
    assert [r.score for r in report.comparisons[0]] == [None, None]
    assert report.notes == [
        "Scoring was skipped: the records were scored by <lambda>, which is not defined in the "
        "notebook (define it and rerun to score the texts again)."
    ]
    report = lmwidgets.rerun(original, namespace={"<lambda>": "text"})
    assert "Scoring was skipped" in report.notes[0] and "not a function" in report.notes[0]
