"""A served judge (issue 20) against a real vLLM server (CPU build) serving the default model:
the judge's calls go out as one batch of concurrent requests, a served model judges a column of
the kernel's model, the records name the served judge without its key, and rerun reproduces
the verdicts."""

from __future__ import annotations

import json
import os

import pytest
from vllm_server import KEY_ENV

import lmwidgets

pytestmark = [pytest.mark.served, pytest.mark.slow]


@pytest.fixture
def served(vllm, registry):
    return lmwidgets.connect(vllm, name="served", api_key_env=KEY_ENV)


def test_a_served_judge_runs_its_calls_as_one_concurrent_batch(served, registry):
    lmwidgets.load_model(engine="scripted", name="m", replies={"*": "Paris is the capital."})
    items = [{"input": f"country {i}"} for i in range(6)]
    c = lmwidgets.prompt(
        "Capital of {input}?",
        model="m",
        dataset=items,
        judge="served",
        judge_tokens=24,
        display=False,
        cache=False,
    )
    assert served.calls == 1  # six judge calls, one batch of concurrent requests
    for result in c:
        judge = result.judge
        assert judge["model"]["engine"] == "openai" and judge["model"]["name"] == "served"
        # vLLM enforces the verdict format (structured outputs): every reply holds a verdict.
        assert judge["enforced"] is True and judge["format"]["kind"] == "regex"
        assert judge["raw"] and judge["label"] is not None, judge["raw"]
    assert os.environ[KEY_ENV] not in json.dumps(c.records)
    report = lmwidgets.rerun(c)
    assert report.matched
    assert [r.judge["raw"] for r in report.comparisons[0]] == [r.judge["raw"] for r in c]
