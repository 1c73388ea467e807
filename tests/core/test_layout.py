"""The layout both the live view and the static copy use: axes from coordinates."""

from types import SimpleNamespace

import pytest

import lmwidgets
from lmwidgets.core.layout import axes_of, item_rows, shape_title, value_label


def cell(label, **coords):
    return SimpleNamespace(label=label, coords=coords, input=None)


def test_two_axes_make_a_matrix_first_axis_as_rows():
    cells = [cell(f"{p}{s}", prompt=p, system=s) for p in "AB" for s in ("none", "pirate")]
    axes = axes_of(cells)
    assert (axes.layout, axes.rows, axes.columns) == ("matrix", ["A", "B"], ["none", "pirate"])
    assert axes.positions == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert axes.choices == ["prompt", "system"] and axes.row_parts == []
    swapped = axes_of(cells, columns="prompt")
    assert (swapped.rows, swapped.columns) == (["none", "pirate"], ["A", "B"])
    assert shape_title(axes) == "prompts × system prompts"


def test_three_axes_group_the_rows_and_columns_can_be_any_axis():
    cells = [
        cell("x", prompt=p, system=s, temperature=t)
        for p in "AB"
        for s in ("none", "terse")
        for t in ("0", "0.7")
    ]
    axes = axes_of(cells)
    assert axes.column_axis == "temperature" and axes.columns == ["T=0", "T=0.7"]
    assert axes.row_axis == "prompt · system"
    assert axes.row_parts == [["A", "none"], ["A", "terse"], ["B", "none"], ["B", "terse"]]
    assert axes.rows[1] == "A · terse"
    by_system = axes_of(cells, columns="system")
    assert by_system.columns == ["none", "terse"]
    assert by_system.row_parts[1] == ["A", "T=0.7"]
    assert len(set(by_system.positions)) == 8
    # An axis that does not vary falls back to the default.
    assert axes_of(cells, columns="trial").column_axis == "temperature"


def test_sparse_products_and_one_axis():
    # Trials apply to sampled columns only: T=0 has trial 1 alone.
    cells = [cell("a", temperature="0", trial="1")]
    cells += [cell("b", temperature="0.7", trial=str(k)) for k in (1, 2, 3)]
    axes = axes_of(cells)
    assert axes.layout == "matrix" and axes.columns == ["trial 1", "trial 2", "trial 3"]
    assert axes.positions == [(0, 0), (1, 0), (1, 1), (1, 2)]
    one = axes_of([cell("a", prompt="A"), cell("b", prompt="B")])
    assert one.layout == "columns" and one.column_axis == "prompt" and one.choices == []


@pytest.mark.parametrize(
    ("axis", "value", "label"),
    [
        ("temperature", "0.7", "T=0.7"),
        ("top_p", "0.9", "top-p=0.9"),
        ("trial", "2", "trial 2"),
        ("field:city", "Paris", "city=Paris"),
        ("prompt", "formal", "formal"),
    ],
)
def test_value_labels(axis, value, label):
    assert value_label(axis, value) == label


def test_static_copy_follows_the_layout_and_the_chosen_columns(registry):
    lmwidgets.load_model(engine="scripted", name="s")
    comparison = lmwidgets.prompt(
        "Hi\n--- B\nHello", systems={"none": None, "terse": "Be terse."}, display=False
    )
    html = comparison.to_html()
    assert "2 × 2 matrix (prompts × system prompts)" in html
    comparison.columns = "prompt"
    assert "2 × 2 matrix (system prompts × prompts)" in comparison.to_html()
    chosen = lmwidgets.prompt(
        "Hi\n--- B\nHello",
        systems={"none": None, "terse": "Be terse."},
        columns="prompt",
        display=False,
    )
    assert chosen.columns == "prompt"
    assert "(system prompts × prompts)" in chosen.to_text()


def test_dataset_items_asking_the_same_question_keep_their_own_rows():
    """VQA style: one question about several images (or clips) is several rows."""

    def item(label, index):
        return SimpleNamespace(label=label, coords={}, input="What is it?", item_index=index)

    variants = [item(label, i) for i in range(3) for label in ("zero-shot", "no-image")]
    axes = axes_of(variants, grid=True)
    assert axes.positions == [(0, 0), (0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]
    # Records made before items were numbered: the n-th column of a label is in the n-th row.
    replayed = [SimpleNamespace(label=v.label, coords={}, input=v.input) for v in variants]
    assert axes_of(replayed, grid=True).positions == axes.positions
    # Unnumbered columns beside numbered ones (--vs an older run) join their item's row.
    older = [SimpleNamespace(label="old", coords={}, input="What is it?") for _ in range(3)]
    mixed = axes_of([*variants, *older], grid=True).positions
    assert mixed[6:] == [(0, 2), (1, 2), (2, 2)]


def test_item_rows_numbered_unnumbered_and_other_inputs():
    rows = item_rows(
        [("a", "q", 4), ("a", "q", 2), ("a", "r", None), ("b", "q", None), ("b", "q", None)]
    )
    assert rows == [0, 1, 2, 0, 1]
    assert item_rows([("a", "q", None), ("a", "q", None), ("b", "q", None)]) == [0, 1, 0]
    assert item_rows([]) == []
