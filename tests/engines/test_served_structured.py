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


def test_cot_with_a_constraint_on_a_server_is_a_clear_error(served):
    with pytest.raises(ConstraintError, match="kernel models only"):
        lmwidgets.prompt("x", strategy="cot", one_of="a,b", display=False)
