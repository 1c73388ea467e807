"""Served models against a real vLLM server (CPU build) serving the embedded default model.

No mocks: the ``vllm`` fixture starts the real server once per session (see
``tests/vllm_server.py``), with an API key that must never show up anywhere.
"""

from __future__ import annotations

import json
import os
import socket
import threading

import pytest
from vllm_server import KEY_ENV, SERVED_NAME

import lmwidgets
from lmwidgets.engines.base import GenerationSettings, StopSignal

pytestmark = [pytest.mark.served, pytest.mark.slow]

#: Prompts on which the kernel's and vLLM's copies of the default model are compared (greedy,
#: float32). README ("Faithfulness across engines") reports the result.
FAITHFUL_PROMPTS = [
    "What is the capital of France?",
    "Name three primary colors.",
    "What is 12 times 3?",
    "Write one sentence about the sea.",
]


@pytest.fixture
def served(vllm, registry):
    return lmwidgets.connect(vllm, name="served", api_key_env=KEY_ENV)


@pytest.fixture
def local(registry):
    return lmwidgets.load_model(name="local")


def ask(text, **options):
    return lmwidgets.prompt(text, display=False, **options)


def _key() -> str:
    return os.environ[KEY_ENV]


def test_connect_describes_the_served_model(served, vllm):
    assert served.engine == "openai" and served.model_id == SERVED_NAME
    assert served.server == "vllm" and served.server_version
    assert served.capabilities.context_length == 2048
    record = served.record()
    assert record["source"] == vllm and record["model_id"] == SERVED_NAME
    assert _key() not in json.dumps(record) + served.summary() + repr(served)
    again = lmwidgets.connect(vllm + "/v1", api_key_env=KEY_ENV)
    assert again is served  # the same server and model: a no-op


def test_connection_errors_are_clear_and_keep_the_kernel_usable(vllm, registry):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    with pytest.raises(lmwidgets.ServerError, match=f"127.0.0.1:{closed}.*cannot connect"):
        lmwidgets.connect(f"http://127.0.0.1:{closed}")
    with pytest.raises(lmwidgets.ServerError, match=r"refused GET /v1/models \(HTTP 401\)"):
        lmwidgets.connect(vllm)  # no key
    with pytest.raises(lmwidgets.InvalidArgumentError, match=f"serves: {SERVED_NAME}"):
        lmwidgets.connect(vllm, model="gpt-17", api_key_env=KEY_ENV)
    with pytest.raises(lmwidgets.InvalidArgumentError, match="NOT_SET_ANYWHERE is not set"):
        lmwidgets.connect(vllm, api_key_env="NOT_SET_ANYWHERE")
    with pytest.raises(lmwidgets.InvalidArgumentError, match="not a server URL"):
        lmwidgets.connect("ftp://example")
    assert lmwidgets.models() == []
    assert lmwidgets.connect(vllm, api_key_env=KEY_ENV).model_id == SERVED_NAME


def test_answers_and_streams_a_column(served):
    steps: list[str] = []
    prompt = served.render([{"role": "user", "content": "What is the capital of France?"}])
    assert prompt.n_tokens > 5 and "<|im_start|>user" in prompt.text  # the server's template
    from lmwidgets.engines.base import PromptRow

    outcome = served.generate(
        [PromptRow(prompt)],
        GenerationSettings(max_new_tokens=16),
        stop=StopSignal(),
        on_step=lambda outputs: steps.append(served.text_of(outputs[0])),
    )
    text = served.text_of(outcome.outputs[0])
    assert text == "The capital of France is Paris."
    assert outcome.outputs[0].finish_reason == "eos" and len(steps) > 3
    assert steps[-1] == text and steps[0] != text  # it streamed


def test_same_model_local_and_served_give_the_same_text(served, local):
    for prompt in FAITHFUL_PROMPTS:
        cmp = ask(prompt, models="local,served", max_new_tokens=24)
        assert cmp["local"].text == cmp["served"].text, prompt
        assert cmp["local"].prompt == cmp["served"].prompt  # one chat template, one prompt


def test_strategies_self_consistency_and_rerun(served):
    cmp = ask(
        "What is 7 + 8?",
        compare="zero-shot,few-shot,cot,self-consistency",
        examples=[("1 + 1", "2"), ("2 + 3", "5")],
        samples=3,
        max_new_tokens=24,
    )
    assert cmp.variants == ["zero-shot", "few-shot", "cot", "self-consistency"]
    assert served.calls == 1  # one batch: 3 greedy rows + 3 samples, sent concurrently
    samples = cmp["self-consistency"].extras["samples"]
    assert len(samples) == 3
    record = cmp["self-consistency"].record
    assert record["model"]["engine"] == "openai" and isinstance(record["generation"]["seed"], int)
    report = lmwidgets.rerun(cmp)
    assert report.matched, report.summary()  # greedy and seeded sampling repeat on the server


def test_a_temperature_sweep_is_one_batch_and_each_column_equals_alone(served):
    """Each request carries its row's own seed, so a sampled column on the server gives the same
    text beside other temperatures as alone with the same seed."""
    from lmwidgets.core.variant import Variant
    from lmwidgets.run.runner import run_variants

    def column(temperature):
        settings = GenerationSettings(max_new_tokens=16, temperature=temperature, seed=5)
        messages = [{"role": "user", "content": "Write one sentence about the sea."}]
        return Variant(f"t{temperature}", messages, served, settings)

    temperatures = (0.3, 0.7, 1.0, 1.3)
    sweep = run_variants([column(t) for t in temperatures])
    assert served.calls == 1
    for t, result in zip(temperatures, sweep.results, strict=True):
        assert result.text == run_variants([column(t)])[0].text, t


def test_dataset_rows_go_out_concurrently_and_are_scored(served):
    items = [{"input": f"What is {a} + {a}?", "expected": str(2 * a)} for a in range(1, 7)]
    cmp = ask("{input}", dataset=items, compare="zero-shot,cot", max_new_tokens=32)
    assert len(cmp.results) == 12 and served.calls == 1
    assert set(cmp.scores) == {"zero-shot", "cot"}
    assert all(r.complete for r in cmp.results)


def test_stop_cancels_the_requests_and_keeps_the_partial_text(served):
    stop = StopSignal()

    class View:
        def start(self, stream, signal, notes):
            pass

        def progress(self, done, total):
            pass

        def update_running(self, stream):
            if len(stream.live_text(0).split()) >= 3:
                stop.set()

        def finish(self, comparison, message):
            pass

    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    plan = build_variants(
        "Write a long story about a lighthouse keeper.",
        registry=lmwidgets.REGISTRY,
        model="served",
        system=None,
        settings=GenerationSettings(max_new_tokens=400),
    )
    cmp = run_variants(plan.variants, view=View(), stop=stop, update_interval=0)
    assert cmp.status == "stopped" and cmp[0].finish_reason == "stopped"
    assert 3 <= len(cmp[0].text.split()) < 60
    assert ask("What is the capital of France?", max_new_tokens=12).text.startswith("The capital")


def test_an_image_for_a_text_model_is_refused_clearly(served, local, tmp_path):
    from PIL import Image

    path = tmp_path / "dot.png"
    Image.new("RGB", (16, 16), "blue").save(path)
    # vLLM says so while rendering the prompt, before anything is generated.
    with pytest.raises(lmwidgets.ServerError, match=r"refused.*not a multimodal model") as caught:
        ask("What is this?", model="served", images=[str(path)], max_new_tokens=8)
    assert _key() not in str(caught.value)
    assert ask("Hi", model="local", max_new_tokens=4).text  # the kernel's model still works


def test_audio_for_a_served_text_model_is_refused_clearly(served, local):
    import numpy as np

    beep = (0.5 * np.sin(np.arange(8_000) * 2 * np.pi * 440 / 16_000), 16_000)
    # The clip goes out as an input_audio part; vLLM refuses it while rendering the prompt.
    with pytest.raises(lmwidgets.ServerError, match=r"refused.*may not take audio") as caught:
        ask("What is this?", model="served", media={"audio": [beep]}, max_new_tokens=8)
    assert _key() not in str(caught.value)
    assert ask("Hi", model="local", max_new_tokens=4).text  # the kernel's model still works


def test_runtime_adapters_on_the_server(served, local, tmp_path):
    adapter_dir = tmp_path / "terse"
    lmwidgets.train_lora(
        [("Capital of France?", "Paris."), ("Capital of Italy?", "Rome.")],
        adapter_dir,
        model="local",
        steps=8,
        rank=4,
    )
    info = lmwidgets.load_adapter(adapter_dir, name="terse", model="served")
    assert info.name == "terse" and "terse" in served.adapters
    cmp = ask("Capital of France?", model="served", adapters="base,terse", max_new_tokens=16)
    assert cmp.variants == ["base", "terse"]
    assert cmp["terse"].record["adapter"]["name"] == "terse"
    with pytest.raises(lmwidgets.AdapterError, match="already served"):
        lmwidgets.load_adapter(adapter_dir, name="terse", model="served")
    with pytest.raises(lmwidgets.AdapterError, match="refused"):
        lmwidgets.load_adapter(tmp_path / "missing", name="ghost", model="served")
    lmwidgets.unload_adapter("terse", model="served")
    assert "terse" not in served.adapters


def test_a_connection_lost_mid_answer_is_a_clear_error(served, local):
    """A server that dies mid-stream: a real socket closing after half an answer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    port = listener.getsockname()[1]

    def serve():
        for _ in range(3):
            conn, _ = listener.accept()
            with conn:
                request = conn.recv(65536).decode()
                if "GET /v1/models" in request:
                    body = json.dumps({"data": [{"id": "m"}]})
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body.encode()
                    )
                elif "GET /version" in request:
                    conn.sendall(
                        b"HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                    )
                else:
                    chunk = {"choices": [{"delta": {"content": "Half an"}}]}
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: text/event-stream\r\n"
                        b"Content-Length: 100000\r\n\r\n"
                        + f"data: {json.dumps(chunk)}\n\n".encode()
                    )
                    return  # the connection closes mid-answer

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        lmwidgets.connect(f"http://127.0.0.1:{port}", name="flaky")
        with pytest.raises(lmwidgets.ServerError, match="connection was lost") as caught:
            ask("Hi", models="served,flaky", max_new_tokens=12)
        partial = caught.value.partial
        assert partial["flaky"].text == "Half an" and partial["flaky"].finish_reason == "error"
        assert partial["served"].complete and partial["served"].text  # the other column finished
    finally:
        listener.close()
        thread.join(timeout=5)


def test_magics_connect_and_compare_without_leaking_the_key(vllm, shell, local, capsys):
    shell.run_line_magic("lm", f"connect {vllm} --as big --api-key-env {KEY_ENV}")
    shell.run_cell_magic("prompt", "--models local,big --out lmw_cmp -n 12", "What is 2 + 2?")
    cmp = shell.user_ns["lmw_cmp"]
    assert cmp.variants == ["local", "big"]
    shell.run_line_magic("lm", "models")
    shown = capsys.readouterr()
    bundle = json.dumps(cmp.mimebundle(), default=str)
    for where in (
        bundle,
        cmp.to_json(),
        shown.out,
        shown.err,
        json.dumps(lmwidgets.models()[-1].record()),
    ):
        assert _key() not in where
    frame = cmp.to_pandas()
    assert list(frame["model"]) == ["local", "big"]


def _one(engine, messages, settings, **row):
    """One row generated directly on ``engine`` (its output)."""
    from lmwidgets.engines.base import PromptRow

    rows = [PromptRow(engine.render(messages), **row)]
    return engine.generate(rows, settings, stop=StopSignal()).outputs[0]


def test_token_logprobs_match_the_kernels_copy(served, local):
    import math

    assert served.capabilities.token_logprobs
    messages = [{"role": "user", "content": FAITHFUL_PROMPTS[0]}]
    settings = GenerationSettings(max_new_tokens=12, logprobs=5)
    theirs = _one(served, messages, settings)
    ours = _one(local, messages, settings)
    text = served.text_of(theirs)
    assert text == local.text_of(ours)
    assert len(theirs.logprobs) == len(theirs.pieces) > 3
    assert all(len(token.top) == 5 for token in theirs.logprobs)
    assert "".join(token.text or "" for token in theirs.logprobs) == text
    for served_token, local_token in zip(theirs.logprobs[:5], ours.logprobs[:5], strict=True):
        assert served_token.text == local_token.text
        served_p, local_p = math.exp(served_token.logprob), math.exp(local_token.logprob)
        assert served_p == pytest.approx(local_p, abs=0.05)
        assert math.exp(served_token.top[0][2]) == pytest.approx(
            math.exp(local_token.top[0][2]), abs=0.05
        )
        assert served_token.top[0][1] == local_token.top[0][1]  # the same favourite


def test_a_fork_continues_a_forced_start_on_vllm(served, local):
    import math

    messages = [{"role": "user", "content": FAITHFUL_PROMPTS[0]}]
    settings = GenerationSettings(max_new_tokens=16, logprobs=2)
    fork = _one(served, messages, settings, forced_text="The capital of Italy")
    text = served.text_of(fork)
    assert text.startswith("The capital of Italy ")  # and goes on (a small model's way)
    first = fork.logprobs[0]
    assert first.text == "The capital of Italy" and math.isnan(first.logprob)
    assert "".join(token.text or "" for token in fork.logprobs) == text
    assert text == local.text_of(
        _one(local, messages, settings, forced_text="The capital of Italy")
    )
