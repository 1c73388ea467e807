"""Ratings from the live view, without a browser: the widget's rate and prefer messages reach
the comparison's records, the cells and the static copy; blind pairwise mode draws its pairs
from a recorded seed and records identities, not positions; what cannot be rated is said."""

from __future__ import annotations

import pytest

import lmwidgets
from lmwidgets.engines.base import GenerationSettings
from lmwidgets.notebook.live import LiveView
from lmwidgets.prompting.strategies import build_variants
from lmwidgets.run.runner import run_variants


class Handle:
    """A display handle that keeps what the static copy was updated with."""

    def __init__(self) -> None:
        self.bundles: list[dict] = []

    def update(self, bundle, raw=False):
        self.bundles.append(bundle)


def _run(registry, text="What is 2+2?", **options):
    if "script" not in registry.names():
        lmwidgets.load_model(engine="scripted", name="script", replies={"*": "The answer is 4."})
    plan = build_variants(
        text,
        registry=registry,
        model=None,
        system=None,
        settings=GenerationSettings(max_new_tokens=32, seed=7),
        variables={},
        **options,
    )
    view = LiveView(plan.variants, "t", show=False, grid=plan.grid)
    view.widget.send = lambda content, buffers=None: None
    view.static_handle = Handle()
    comparison = run_variants(plan.variants, view=view, finalize=plan.finish)
    return view, comparison


def _send(view, **content):
    view.widget._on_message(view.widget, content, [])


def test_thumbs_from_the_view_reach_records_cells_and_the_static_copy(registry):
    view, comparison = _run(registry, compare="zero-shot,cot")
    widget = view.widget
    assert widget.can_rate and [c["rating"] for c in widget.columns] == [None, None]
    _send(view, type="rate", index=1, value="up")
    assert comparison["cot"].rating == "up"
    assert comparison["cot"].record["rating"]["value"] == "up"
    assert [c["rating"] for c in widget.columns] == [None, "up"]
    copy = view.static_handle.bundles[-1]
    assert "▲ liked" in copy["text/html"]
    saved = copy[lmwidgets.RECORD_MIME]["records"]
    assert saved[1]["rating"]["value"] == "up"  # what a saved notebook keeps
    _send(view, type="rate", index=1, value=None)
    assert comparison["cot"].rating is None and widget.columns[1]["rating"] is None
    # From code, the view follows too.
    comparison.rate("zero-shot", "down")
    assert widget.columns[0]["rating"] == "down"
    assert "▼ disliked" in view.static_handle.bundles[-1]["text/html"]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ({"type": "rate", "index": 9, "value": "up"}, "named no cell"),
        ({"type": "rate", "index": "0", "value": "up"}, "named no cell"),
        ({"type": "rate", "index": 0, "value": "great"}, "A rating is 'up' or 'down'"),
        ({"type": "prefer", "a": 0, "b": 1, "choice": "a"}, "blind pairwise mode is not on"),
    ],
)
def test_bad_messages_are_said_in_the_view(registry, content, said):
    view, comparison = _run(registry, compare="zero-shot,cot")
    view.widget._on_message(view.widget, content, [])
    assert said in view.widget.message
    assert all(r.rating is None for r in comparison) and comparison.preferences == []


def test_no_ratings_while_the_view_runs(registry):
    view, comparison = _run(registry, compare="zero-shot,cot")
    view.widget.status = "running"  # a re-run in the same view
    _send(view, type="rate", index=0, value="up")
    assert "once the run has finished" in view.widget.message
    assert comparison[0].rating is None
    view.widget.blind = True
    assert view.widget.blind is False and "starts once the run has finished" in view.widget.message


def test_blind_mode_draws_every_pair_and_records_identities(registry):
    view, comparison = _run(registry, "What is 2+2?", temperatures="0,0.5,0.9")
    widget = view.widget
    widget.blind = True  # the view's toggle
    pair = widget.blind_pair
    assert pair["number"] == 1 and pair["total"] == 3 and isinstance(pair["seed"], int)
    seen = set()
    labels = [c["label"] for c in widget.columns]
    for choice in ("a", "tie", "b"):
        pair = widget.blind_pair
        seen.add(frozenset((pair["a"], pair["b"])))
        shown_a, shown_b = labels[pair["a"]], labels[pair["b"]]
        _send(view, type="prefer", a=pair["a"], b=pair["b"], choice=choice, revealed=False)
        last = next(p for p in comparison.preferences if {p.a, p.b} == {shown_a, shown_b})
        assert last.blind and last.seed == pair["seed"]
        assert last.winner == {"a": shown_a, "b": shown_b, "tie": None}[choice]
    assert len(seen) == 3
    assert widget.blind_pair == {"done": True, "total": 3, "seed": pair["seed"]}
    entries = [e for r in comparison for e in r.record.get("preferences", [])]
    assert all(sorted(e["shown"]) != ["A", "B"] and e["seed"] == pair["seed"] for e in entries)
    # Again: every pair is judged; a fresh session of the mode has nothing left to ask.
    widget.blind = False
    widget.blind = True
    assert widget.blind_pair["done"] is True and widget.blind_pair["total"] == 0


def test_a_revealed_or_stale_answer(registry):
    view, comparison = _run(registry, compare="zero-shot,cot")
    view.widget.blind = True
    pair = dict(view.widget.blind_pair)
    _send(view, type="prefer", a=pair["b"], b=pair["a"], choice="a")
    assert "no longer the one shown" in view.widget.message and not comparison.preferences
    _send(view, type="prefer", a=pair["a"], b=pair["b"], choice="a", revealed=True)
    (p,) = comparison.preferences
    assert p.blind is False


def test_blind_pairs_stay_within_a_dataset_item(registry):
    items = [{"input": "2+2"}, {"input": "3+3"}]
    view, comparison = _run(registry, "Compute {input}.", compare="zero-shot,cot", dataset=items)
    view.widget.blind = True
    assert view.widget.blind_pair["total"] == 2
    rows = set()
    while not view.widget.blind_pair.get("done"):
        pair = view.widget.blind_pair
        rows.add(view.widget.columns[pair["a"]]["row"])
        assert view.widget.columns[pair["a"]]["row"] == view.widget.columns[pair["b"]]["row"]
        assert pair["item"] == view.widget.columns[pair["a"]]["row_label"]
        _send(view, type="prefer", a=pair["a"], b=pair["b"], choice="b")
    assert rows == {0, 1} and {p.row for p in comparison.preferences} == {0, 1}


def test_one_column_has_no_blind_mode(registry):
    view, _ = _run(registry)
    view.widget.blind = True
    assert view.widget.blind is False and "two columns or more" in view.widget.message
