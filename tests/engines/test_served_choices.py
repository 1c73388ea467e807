"""Given choices on a real vLLM server (its prompt log-probabilities): the same scores and
picks as the kernel's copy of the default model, batched in one request per adapter."""

from __future__ import annotations

import json
import os
import time

import pytest
from vllm_server import KEY_ENV

import lmwidgets
from lmwidgets.engines.base import StopSignal

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


#: Five questions with two choices each: scored two prompts a batch (three batches).
STOPPED_SET = [
    {"input": "What is the capital of France?", "choices": ["Paris", "Lyon"], "expected": 0},
    {"input": "What is the opposite of hot?", "choices": ["cold", "warm"], "expected": 0},
    {"input": "What color is a clear sky?", "choices": ["blue", "green"], "expected": 0},
    {"input": "How many legs does a spider have?", "choices": ["eight", "six"], "expected": 0},
    {"input": "What do bees make?", "choices": ["honey", "milk"], "expected": 0},
]


def test_stop_during_a_served_choices_batch(vllm, registry):
    """Stop pressed while the server tokenizes the fourth prompt (the second batch's second):
    nothing more goes to the server, the three prompts scored whole keep their scores (the
    first batch and the first of the second), the run and its records say stopped, and the
    next run on the same engine scores everything as before."""
    served = lmwidgets.connect(vllm, name="served", api_key_env=KEY_ENV)
    stop = StopSignal()
    sent: list[tuple[str, bool]] = []  # (path, whether Stop was set when it went out)
    stopped_at: list[float] = []

    def on_request(request):
        sent.append((request.url.path, stop.is_set()))

    def on_response(response):  # the Stop button, pressed once the spider prompt's head is in
        request = response.request
        if stop.is_set() or request.url.path != "/tokenize":
            return
        if "spider" in str(json.loads(request.content).get("prompt", "")):  # not a chat render
            stopped_at.append(time.perf_counter())
            stop.set()

    hooks = served._client.http.event_hooks
    hooks["request"].append(on_request)
    hooks["response"].append(on_response)
    calls = served.calls
    try:
        stopped = lmwidgets.prompt(
            "{input}",
            model="served",
            dataset=STOPPED_SET,
            batch_size=2,
            stop=stop,
            cache=False,
            display=False,
        )
        returned = time.perf_counter()
    finally:
        hooks["request"].remove(on_request)
        hooks["response"].remove(on_response)
    assert stopped_at and returned - stopped_at[0] < 5.0
    assert [path for path, after_stop in sent if after_stop] == []  # nothing sent after Stop
    assert served.calls == calls + 2  # the third batch never went out
    reasons = ["eos", "eos", "eos", "stopped", "stopped"]
    assert stopped.status == "stopped" and [r.finish_reason for r in stopped] == reasons
    assert [r.choice_logprobs is None for r in stopped] == [False, False, False, True, True]
    saved = json.loads(stopped.to_json())
    assert saved["status"] == "stopped"
    assert [r["finish_reason"] for r in saved["results"]] == reasons
    assert [r.record["output"]["finish_reasons"] for r in stopped][3:] == [["stopped"]] * 2

    again = lmwidgets.prompt(
        "{input}", model="served", dataset=STOPPED_SET, cache=False, display=False
    )
    assert served.calls == calls + 3  # one batch of all five, scored by the server
    assert again.status == "done" and all(r.finish_reason == "eos" for r in again)
    assert all(r.choice_logprobs is not None for r in again)
    for kept, whole in zip(stopped.results[:3], again.results[:3], strict=True):
        assert kept.choice_logprobs == pytest.approx(whole.choice_logprobs, abs=1e-3)
        assert kept.answer == whole.answer
