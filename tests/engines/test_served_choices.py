"""Given choices on a real vLLM server (its prompt log-probabilities): the same scores and
picks as the kernel's copy of the default model, batched in one request per adapter."""

from __future__ import annotations

import json
import os

import pytest
from vllm_server import KEY_ENV

import lmwidgets

pytestmark = [pytest.mark.served, pytest.mark.slow]

DATASET = [
    {
        "input": "What is the capital of France?",
        "choices": ["Paris", "Lyon", "Nice"],
        "expected": 0,
    },
    {"input": "What is the opposite of hot?", "choices": ["warm", "cold"], "expected": "cold"},
]


def test_served_choices_equal_the_kernel(vllm, registry):
    served = lmwidgets.connect(vllm, name="served", api_key_env=KEY_ENV)
    lmwidgets.load_model(name="local")
    calls = served.calls
    comparison = lmwidgets.prompt("{input}", models="local,served", dataset=DATASET, display=False)
    assert served.calls == calls + 1  # both items in one scoring call (one batch)
    for local, remote in zip(comparison.results[0::2], comparison.results[1::2], strict=True):
        assert remote.model == "served" and local.model == "local"
        assert remote.prompt == local.prompt
        assert remote.choice_logprobs == pytest.approx(local.choice_logprobs, abs=1e-3)
        assert remote.extras["n_tokens"] == local.extras["n_tokens"]
        assert remote.answer == local.answer
        assert remote.extras["acc_norm"] == local.extras["acc_norm"]
    assert comparison.scores["served"] == comparison.scores["local"]
    shown = json.dumps(comparison.mimebundle(), default=str) + comparison.to_json()
    assert os.environ[KEY_ENV] not in shown  # records and the static copy
