"""Structured answers on a real vLLM server: vLLM's structured outputs enforce the constraint,
lmwidgets checks it the same way as in the kernel; what the server cannot do is a clear error."""

from __future__ import annotations

import json

import pytest
from vllm_server import KEY_ENV

import lmwidgets
from lmwidgets.errors import ConstraintError

pytestmark = [pytest.mark.served, pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 20}, "sunny": {"type": "boolean"}},
    "required": ["city", "sunny"],
    "additionalProperties": False,
}


@pytest.fixture
def served(vllm, registry):
    return lmwidgets.connect(vllm, name="served", api_key_env=KEY_ENV)


def test_vllm_enforces_json_regex_and_choice(served):
    result = lmwidgets.prompt(
        "Describe Paris's weather as JSON.", json=SCHEMA, max_new_tokens=60, display=False
    )[0]
    assert result.valid is True, result.text
    assert result.parsed == json.loads(result.text) and set(result.parsed) == {"city", "sunny"}
    year = lmwidgets.prompt("When did WW2 end?", regex="[0-9]{4}", display=False)[0]
    assert year.valid and len(year.text) == 4 and year.text.isdigit()
    both = lmwidgets.prompt(
        "Is the sky green? Answer yes or no.",
        one_of="yes,no",
        constrain="both",
        max_new_tokens=20,
        display=False,
    )
    free, enforced = both.results
    assert enforced.text in ("yes", "no") and enforced.valid
    assert free.valid is (free.text.strip() in ("yes", "no"))
    assert enforced.record["output"]["structured"]["constraint"]["choices"] == ["yes", "no"]


def test_cot_reasons_freely_then_answers_in_shape_on_vllm(served):
    """One Lark grammar (free text, the marker, then the answer) through vLLM's guidance backend."""
    comparison = lmwidgets.prompt(
        "Is the sky green?",
        strategy="cot",
        one_of="yes,no",
        max_new_tokens=120,
        display=False,
    )
    result = comparison[0]
    if result.finish_reason == "length":  # reasoning used the budget: cut, invalid, no crash
        assert result.valid is False
    else:
        assert result.valid is True, result.text
        assert "The answer is:" in result.text and result.parsed in ("yes", "no")
    structured = result.record["output"]["structured"]["constraint"]
    assert structured["after"] == "The answer is:" and structured["choices"] == ["yes", "no"]


def test_cot_before_your_own_grammar_on_a_server_is_a_clear_error(served):
    with pytest.raises(ConstraintError, match="kernel models only"):
        lmwidgets.prompt("x", strategy="cot", grammar='start: "a" | "b"', display=False)
