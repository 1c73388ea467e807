"""What a Comparison says about itself outside a notebook view."""

from __future__ import annotations

import lmwidgets


def test_the_repr_says_when_a_text_was_cut_off(registry):
    lmwidgets.load_model(engine="scripted", name="script", replies={"*": "one two three four"})
    cut = lmwidgets.prompt("Count.", max_new_tokens=2, display=False)
    assert cut[0].cut_off and cut.text == "one two"  # .text alone cannot say it
    assert (
        repr(cut)
        == "<Comparison done, 1 of 1 truncated (max tokens): 1 result(s), columns ['script']>"
    )
    whole = lmwidgets.prompt("Count.", display=False)
    assert repr(whole) == "<Comparison done: 1 result(s), columns ['script']>"
