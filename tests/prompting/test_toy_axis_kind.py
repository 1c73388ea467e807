"""An axis kind is one module plus a registration: a toy kind registered in this test alone flows
through :func:`lmwidgets.prompt`, ``%%prompt`` (its own option), the layout, the records,
``%lm rerun`` and the static copy and live view (a per-cell badge), with no code for it anywhere
in lmwidgets.

The ``case`` kind: the question as written, upper-cased or lower-cased (``--case upper,lower``).
Each changed column records its ``case``, shows a badge (``UPPER`` / ``lower``) and has a
``question_case`` column in ``to_pandas()``. A scripted engine answers by the question's case.
"""

from __future__ import annotations

from typing import Any

import pytest

import lmwidgets
from lmwidgets.core.axis_kinds import KINDS, AxisContext, AxisKind, AxisRun, register_kind
from lmwidgets.errors import InvalidArgumentError
from lmwidgets.prompting.axes import KindAxis

CASES = {"upper": str.upper, "lower": str.lower}


class CaseError(InvalidArgumentError):
    """A case that does not exist."""


class CaseRun(AxisRun):
    def turns(self, value: Any, system: str | None, question: str):
        return system, question if value is None else CASES[value](question), []

    def variant(self, value: Any, strategy: str, media: list[Any]) -> dict[str, Any]:
        return {"recorded": {"case": value}} if value else {}

    def finishers(self):
        return [lambda comparison: comparison.notes.append("case: changed the question")]


def parse_cases(value: Any) -> list[str]:
    names = value.split(",") if isinstance(value, str) else list(value)
    for name in names:
        if name not in CASES:
            raise CaseError(f"--case {name}: a case is upper or lower.")
    return names


def build(context: AxisContext) -> CaseRun | None:
    given = context.options.get("case")
    if given is None:
        return None
    values = (("as-written", None), *((name, name) for name in parse_cases(given)))
    run = CaseRun()
    run.axis = KindAxis("case", values)
    return run


def add_options(parser: Any) -> None:
    parser.add_argument("--case", default=None, metavar="upper,lower", help="Change the case.")


def badge(result: Any) -> dict[str, str] | None:
    case = result.record.get("case") if isinstance(result.record, dict) else None
    if case is None:
        return None
    text = "UPPER" if case == "upper" else "lower"
    return {"text": text, "title": f"the question was {case}-cased", "state": case}


def make_case_kind(badge_of: Any = badge) -> AxisKind:
    """The ``case`` kind (the browser test registers it in a kernel with its own badge)."""
    return AxisKind(
        name="case",
        after="top_p",
        build=build,
        keywords=("case",),
        title="question cases",
        label=lambda value_id: "as written" if value_id == "as-written" else value_id,
        error=CaseError,
        needs_text=False,
        add_options=add_options,
        restore=lambda record: {"case": record["case"]} if "case" in record else {},
        table=lambda result: {"question_case": result.record.get("case")},
        badge=badge_of,
    )


@pytest.fixture
def case_kind():
    kind = register_kind(make_case_kind())
    yield kind
    del KINDS["case"]


@pytest.fixture
def shouty(registry, case_kind):
    return lmwidgets.load_model(
        engine="scripted",
        name="shouty",
        replies={"WHAT IS IT": "LOUD.", "what is it": "quiet.", "*": "Normal."},
    )


def test_a_toy_axis_kind_makes_columns_records_and_a_layout(shouty):
    cmp = lmwidgets.prompt(
        "What is it?", case="upper,lower", compare="zero-shot,cot", display=False
    )
    assert [r.variant for r in cmp][:3] == [
        "zero-shot · as written",
        "zero-shot · upper",
        "zero-shot · lower",
    ]
    assert [r.text for r in cmp][:3] == ["Normal.", "LOUD.", "quiet."]
    assert [r.coords.get("case") for r in cmp][:3] == ["as-written", "upper", "lower"]
    records = [r.record for r in cmp]
    assert "case" not in records[0] and records[1]["case"] == "upper"
    assert records[1]["axes"]["case"] == "upper"
    assert cmp.notes.count("case: changed the question") == 1
    from lmwidgets.core.layout import axes_of, shape_title

    axes = axes_of(cmp.results)
    assert axes.layout == "matrix" and shape_title(axes) == "strategies × question cases"
    assert axes.columns == ["as written", "upper", "lower"]
    table = cmp.to_pandas()
    assert table["question_case"].isna()[0] and list(table["question_case"])[1:3] == [
        "upper",
        "lower",
    ]
    restored = lmwidgets.Comparison.from_records(cmp.records)
    assert [r.record.get("case") for r in restored] == [r.get("case") for r in records]


def test_the_toy_kind_badge_shows_in_the_static_copy_and_the_live_cell(shouty):
    cmp = lmwidgets.prompt("What is it? <b>", case="upper", display=False)
    html = cmp.to_html()
    assert 'class="lmw-axis-badge" data-kind="case" data-state="upper"' in html
    assert 'title="the question was upper-cased"' in html and ">UPPER</span>" in html
    assert "UPPER \\(the question was upper\\-cased\\)" in cmp.to_markdown()
    from lmwidgets.notebook.live import axis_badges
    from lmwidgets.notebook.widgets import PromptView

    cell = PromptView.column("c", badges=axis_badges(cmp[1]))
    assert cell["badges"] == [
        {"kind": "case", "text": "UPPER", "title": "the question was upper-cased", "state": "upper"}
    ]
    assert PromptView.column("c")["badges"] == []


def test_rerun_restores_what_the_kind_recorded(shouty):
    cmp = lmwidgets.prompt("What is it?", case="lower", display=False)
    report = lmwidgets.rerun(cmp)
    assert report.matched, report.rows
    again = report.comparisons[0].results
    assert [r.record.get("case") for r in again] == [None, "lower"]
    assert [r.text for r in again] == ["Normal.", "quiet."]


def test_the_toy_kind_has_its_own_option_and_reruns_from_the_magic(shell, shouty, capsys):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.notebook.widgets import PromptView

    assert shell.run_cell("%prompt --help").success and "--case" in capsys.readouterr().out
    before = set(widgets)
    cell = "%%prompt --case upper --columns case --out lmw_case\nWhat is it?"
    assert shell.run_cell(cell).success
    out = shell.user_ns["lmw_case"]
    assert [r.text for r in out] == ["Normal.", "LOUD."] and out[1].record["case"] == "upper"
    (view,) = [w for key, w in widgets.items() if key not in before and isinstance(w, PromptView)]
    assert [c["badges"] for c in view.columns][1][0]["text"] == "UPPER"
    assert view.columns[0]["badges"] == []
    capsys.readouterr()
    assert shell.run_cell("%lm rerun lmw_case").success
    assert "2 of 2 texts match" in capsys.readouterr().out
    bad = shell.run_cell("%%prompt --case sideways\nWhat is it?")
    assert isinstance(bad.error_in_exec, CaseError) and "sideways" in str(bad.error_in_exec)


def test_without_the_registration_the_keyword_is_unknown(registry):
    lmwidgets.load_model(engine="scripted", name="plain")
    with pytest.raises(InvalidArgumentError, match="case"):
        lmwidgets.prompt("What is it?", case="upper", display=False)


def test_columns_names_registered_kinds_and_given_choices_refuse_text_kinds(shouty):
    with pytest.raises(lmwidgets.StrategyError, match=r"case.*did you mean|not an axis"):
        lmwidgets.prompt("What is it?", columns="cases", display=False)
    from lmwidgets.errors import ChoicesError

    with pytest.raises(ChoicesError, match="--probe has no text to act on"):
        lmwidgets.prompt("Pick", choices=["a", "b"], probe="leak", system="S", display=False)
    # The toy kind does not need generated text (needs_text=False): given choices take it.
    scored = lmwidgets.prompt("Pick", choices=["a", "b"], case="upper", display=False)
    assert [r.coords["case"] for r in scored] == ["as-written", "upper"]
    assert scored[1].record["case"] == "upper" and "PICK" in scored[1].prompt
