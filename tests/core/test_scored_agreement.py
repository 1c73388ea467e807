"""Agreement follows the scorer (issue 20): answers judged right against the same ``expected``
agree, and the "differs" mark is symmetric (the minority, or every answer without a majority,
never a column by its position)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import lmwidgets
from lmwidgets.core.answers import agree_marks, agreement

CAPITALS = [
    {"input": "France", "expected": "Paris"},
    {"input": "Italy", "expected": "Rome"},
    {"input": "Spain", "expected": "Madrid"},
    {"input": "Japan", "expected": "Tokyo"},
    {"input": "Peru", "expected": "Lima"},
]
VERBOSE = {
    "France": "The capital of France is Paris.",
    "Italy": "The capital of Italy is Rome.",
    "Spain": "The capital of Spain is Barcelona.",
    "Japan": "Kyoto",
    "Peru": "The capital of Peru is Lima.",
}
TERSE = {"France": "Paris", "Italy": "Milan", "Spain": "Madrid", "Japan": "Osaka", "Peru": "Lima"}


@pytest.fixture
def capitals(registry):
    lmwidgets.load_model(engine="scripted", name="verbose", replies=VERBOSE)
    lmwidgets.load_model(engine="scripted", name="terse", replies=TERSE)
    return lmwidgets.prompt(
        "Capital of {input}?", models=["verbose", "terse"], dataset=CAPITALS, display=False
    )


def test_both_right_answers_agree(capitals):
    france = capitals.agreement(row=0)
    assert [r.correct for r in capitals.rows[0]] == [True, True]
    assert france.summary == "both columns agree on Paris"
    assert france.all_agree and france.marks == ["all", "all"]
    assert capitals.agreement(row=4).marks == ["all", "all"]


def test_one_right_one_wrong_marks_both(capitals):
    # Italy: verbose right, terse wrong; Spain: verbose wrong, terse right. Neither column is
    # marked for its position: with no majority both differ.
    for row in (1, 2):
        found = capitals.agreement(row=row)
        assert found.summary == "the 2 columns disagree"
        assert found.marks == ["minor", "minor"]


def test_two_wrong_answers_differ_by_what_was_compared(capitals):
    japan = capitals.agreement(row=3)
    assert [r.correct for r in capitals.rows[3]] == [False, False]
    assert japan.marks == ["minor", "minor"] and not japan.all_agree


def test_the_minority_is_marked_wherever_it_stands(registry):
    lmwidgets.load_model(engine="scripted", name="a", replies={"*": "Lyon"})
    lmwidgets.load_model(engine="scripted", name="b", replies={"*": "It is Paris."})
    lmwidgets.load_model(engine="scripted", name="c", replies={"*": "Paris"})
    item = [{"input": "France", "expected": "Paris"}]
    for order in (["a", "b", "c"], ["b", "a", "c"], ["b", "c", "a"]):
        run = lmwidgets.prompt("Capital of {input}?", models=order, dataset=item, display=False)
        found = run.agreement(row=0)
        assert found.summary == "2 of 3 columns agree on Paris"
        assert found.marks == ["minor" if m == "a" else "major" for m in order]


def test_without_expected_answers_group_by_their_normal_form(registry):
    lmwidgets.load_model(engine="scripted", name="a", replies={"*": "Paris."})
    lmwidgets.load_model(engine="scripted", name="b", replies={"*": "paris"})
    run = lmwidgets.prompt("Capital of France?", models=["a", "b"], display=False)
    assert run.agreement().marks == ["all", "all"]


@pytest.mark.parametrize(
    ("groups", "marks"),
    [
        ([0, 0], ["all", "all"]),
        ([0, 1], ["minor", "minor"]),
        ([0, 0, 1], ["major", "major", "minor"]),
        ([1, 0, 0], ["minor", "major", "major"]),
        ([0, 1, 2], ["minor", "minor", "minor"]),
        ([0, 0, 1, 1], ["minor"] * 4),
        ([0, None], ["major", ""]),
        ([None, None], ["", ""]),
        ([0], ["major"]),
    ],
)
def test_agree_marks(groups, marks):
    assert agree_marks(groups) == marks


def test_agreement_keys():
    found = agreement(["The opposite of hot is cold.", "cold"], keys=["right", "right"])
    assert found.all_agree and found.summary == "both columns agree on The opposite of hot is cold."


FILTERS = Path(__file__).resolve().parents[2] / "js" / "src" / "filters.js"

NODE_CHECK = """
import { agreeMarks, rowDisagrees, rowShown } from %s;
const cases = JSON.parse(process.argv[1]);
const marks = cases.map((groups) => agreeMarks(groups));
const rows = cases.map((groups) => groups.map((group) => ({ group, correct: null })));
console.log(JSON.stringify({
  marks,
  disagree: rows.map(rowDisagrees),
  shown: rows.map((cells) => rowShown("disagree", cells)),
}));
"""


def test_the_view_marks_and_filters_as_python_does(capitals):
    """filters.js (the view's pure functions), run by node, on the groups Python gives."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    cases = [capitals.agreement(row=r).groups for r in range(len(capitals.rows))]
    cases += [[0, 0, 1], [1, 0, 0], [0, 1, 2], [0, 0, 1, 1], [0, None], [0]]
    script = NODE_CHECK % json.dumps(FILTERS.as_uri())
    found = subprocess.run(
        [node, "--input-type=module", "-e", script, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    out = json.loads(found.stdout)
    assert out["marks"] == [agree_marks(groups) for groups in cases]
    # The "disagreeing only" filter keeps Italy, Spain and Japan, not France or Peru (both right).
    assert out["shown"][:5] == [False, True, True, True, False]
    assert out["disagree"] == out["shown"]


# Where the views say no agreement, neither does the Python API ------------------------------


def test_probe_columns_have_no_agreement(registry):
    # Every column answers 4, but each probe column is another attack: "all agree" means nothing.
    lmwidgets.load_model(engine="scripted", name="calc", replies={"*": "The answer is 4."})
    system = "You are a calculator. Only answer arithmetic questions."
    run = lmwidgets.prompt("What is 2+2?", system=system, probe="leak", display=False)
    assert len(run.results) > 2 and run.results[1].probe
    assert run.agreement() is None
    # A bad row is still said, not hidden behind the None.
    with pytest.raises(lmwidgets.errors.InvalidArgumentError, match="row must be"):
        run.agreement(row=5)
    # The same model on two wordings asks one question: its agreement is said.
    plain = lmwidgets.prompt("What is 2+2?\n--- B\nHow much is 2+2?", display=False)
    assert plain.agreement().summary == "both columns agree on 4"


def test_a_pairwise_judged_run_has_no_agreement(registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "The answer is 4."})
    lmwidgets.load_model(engine="scripted", name="judge", replies={"*": "Alike.\n[[tie]]"})
    data = [{"input": "2+2"}, {"input": "1+3"}]
    run = lmwidgets.prompt(
        "Compute {input}.\n--- child\nCompute {input} for a child.",
        dataset=data,
        judge="judge",
        judge_pairwise=True,
        display=False,
    )
    assert run.results[1].judge["mode"] == "pairwise"
    assert [run.agreement(row=r) for r in range(len(run.rows))] == [None, None]
    with pytest.raises(lmwidgets.errors.InvalidArgumentError, match="2 dataset items"):
        run.agreement()
