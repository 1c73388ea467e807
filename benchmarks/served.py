"""Served-model benchmarks: lmwidgets against a real vLLM server (the CPU build in .venv-vllm).

    python -m benchmarks.served                       # starts its own vLLM -> build/bench-served.json
    python -m benchmarks.served --url URL [--api-key-env VAR]   # a running server of the default model
    python -m benchmarks.served --quick --url URL     # a smoke run: few tokens, one repeat (tests)

Without ``--url`` it serves the embedded default model (the kernel's de-quantized cache) with
``scripts/serve_vllm.sh`` on a free loopback port and stops it (its whole process group) at the
end; it skips itself (exit 0) when ``.venv-vllm`` is missing (``make vllm``).

As in ``benchmarks/run.py``, both sides of each row run in this one process, interleaved, and the
result is a ratio; every row that generates checks its texts against the other side's. Every
request generates exactly its token budget (``ignore_eos`` with ``min_tokens``), so runs compare
equal work.

1. side by side: 4 columns against the served model as one lmwidgets batch (concurrent
   requests) vs one request after another with a bare httpx streaming client; tokens/s.
2. streaming: one served column through lmwidgets' runner into a headless live view vs the bare
   httpx streaming client; same prompt, same tokens; time.
3. models side by side: ``--models local,served`` (one worker per engine) vs the slower of the
   two run alone; wall time. With ``--split-cores`` (default in a full run on >= 2 cores) it is
   measured again with vLLM on the last core and this process on the others, as if the server
   were another machine.
4. engines: the same 4 columns on the in-kernel engine vs on vLLM, same model; tokens/s (a table
   row, no target).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.run import Measurement, _HeadlessView, _measured, _peak_rss_mb, _table

ROOT = Path(__file__).resolve().parent.parent
VLLM_VENV = Path(os.environ.get("VLLM_VENV", ROOT / ".venv-vllm"))
SERVED_NAME = "SmolLM2-135M-Instruct"
READY_SECONDS = 400
QUESTION = "What is 7 + 8?"
EXAMPLES = [("What is 2 + 3?", "5"), ("What is 10 - 4?", "6")]


# -- the server -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextlib.contextmanager
def vllm_server(model_dir: Path, log_path: Path, cpus: str | None = None) -> Iterator[str]:
    """``scripts/serve_vllm.sh`` in the foreground, in its own process group (so the engine
    process goes too); yields the URL once ``/health`` answers; stops the group at the end.

    ``cpus`` (e.g. ``"1"``) pins the server (``taskset``) and vLLM's OpenMP threads to those CPUs.
    """
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "HF_HUB_OFFLINE": "1",
    }
    command = ["bash", str(ROOT / "scripts" / "serve_vllm.sh"), str(model_dir), str(port)]
    command += [SERVED_NAME]
    if cpus is not None:
        env["VLLM_CPU_OMP_THREADS_BIND"] = cpus
        command = ["taskset", "-c", cpus, *command]
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    try:
        while not _healthy(url):
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"vLLM exited with {process.returncode}:\n{tail}")
            if time.monotonic() - started > READY_SECONDS:
                raise RuntimeError(f"vLLM was not ready in {READY_SECONDS} s (log: {log_path})")
            time.sleep(1)
        print(f"vLLM ready at {url} after {time.monotonic() - started:.0f} s", file=sys.stderr)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # The engine process may outlive the script for a moment: wait for the group to be gone.
        for _ in range(30):
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


# -- the plain way: a bare streaming client ---------------------------------------------------


class BareClient:
    """What a notebook without lmwidgets would do: httpx, one streamed chat completion."""

    def __init__(self, url: str, model_id: str, api_key: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = url.rstrip("/") + "/v1/chat/completions"
        self.model_id = model_id
        self.http = httpx.Client(headers=headers, timeout=300, trust_env=False)

    def stream(self, messages: list[dict[str, Any]], n_tokens: int) -> tuple[str, int]:
        """(text, completion tokens) of one greedy answer of exactly ``n_tokens`` tokens."""
        payload = {
            "model": self.model_id,
            "messages": messages,
            "max_tokens": n_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "stream": True,
            "ignore_eos": True,
            "min_tokens": n_tokens,
            "stream_options": {"include_usage": True},
        }
        pieces: list[str] = []
        tokens = 0
        with self.http.stream("POST", self.url, json=payload) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                    continue
                chunk = json.loads(line[5:])
                for choice in chunk.get("choices") or []:
                    pieces.append((choice.get("delta") or {}).get("content") or "")
                usage = chunk.get("usage")
                if usage:
                    tokens = int(usage.get("completion_tokens") or 0)
        return "".join(pieces), tokens

    def close(self) -> None:
        self.http.close()


# -- variants ----------------------------------------------------------------------------------


def _variants(n_tokens: int, *, model: str | None = None, models: str | None = None, four=True):
    """The benchmark's columns: zero-shot, few-shot, cot and zero-shot with a system prompt (as
    in ``benchmarks/run.py``) on ``model``, or zero-shot alone (on ``models``, side by side);
    rendered through their engines."""
    from lmwidgets.engines.base import GenerationSettings
    from lmwidgets.engines.registry import REGISTRY
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import prepare

    settings = GenerationSettings(max_new_tokens=n_tokens)
    common = {"registry": REGISTRY, "model": model, "models": models, "settings": settings}
    if not four:
        variants = build_variants(QUESTION, system=None, **common).variants
    else:
        plan = build_variants(
            QUESTION,
            system=None,
            compare="zero-shot,few-shot,cot",
            examples=EXAMPLES,
            **common,
        )
        extra = build_variants(QUESTION, system="Answer briefly.", **common).variants[0]
        extra.label = "zero-shot+system"
        variants = [*plan.variants, extra]
    for variant in variants:
        prepare(variant, [])
    return variants


def _run(variants, view=None):
    from lmwidgets.run.runner import run_variants

    comparison = run_variants(variants, view=view, ignore_eos=True)
    failed = [r.variant for r in comparison.results if not r.complete]
    if failed:
        raise RuntimeError(f"columns did not finish: {failed} ({comparison.status})")
    return comparison


def _timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - started, value


# -- the benchmarks ----------------------------------------------------------------------------


def bench_side_by_side(bare: BareClient, n_tokens: int, repeats: int, warmup: int) -> Measurement:
    """4 served columns as one lmwidgets batch (concurrent requests) vs one after another."""
    from concurrent.futures import ThreadPoolExecutor

    variants = _variants(n_tokens, model="served")
    base_times, lmw_times, ceiling_times = [], [], []
    bare_out: list[tuple[str, int]] = []
    comparison = None
    with ThreadPoolExecutor(len(variants)) as pool:
        for _ in range(warmup + repeats):  # the first round(s) warm up
            seconds, bare_out = _timed(
                lambda: [bare.stream(v.rendered.payload, n_tokens) for v in variants]
            )
            base_times.append(seconds)
            seconds, comparison = _timed(_run, variants)
            lmw_times.append(seconds)
            # The server's own ceiling: the same 4 requests sent at once by the bare client.
            seconds, _ = _timed(
                lambda: list(
                    pool.map(lambda v: bare.stream(v.rendered.payload, n_tokens), variants)
                )
            )
            ceiling_times.append(seconds)
    total = n_tokens * len(variants)
    base_tps = total / statistics.median(base_times[warmup:])
    lmw_tps = total / statistics.median(lmw_times[warmup:])
    ceiling_tps = total / statistics.median(ceiling_times[warmup:])
    ratio = lmw_tps / base_tps
    return Measurement(
        "served: 4 columns as concurrent requests vs one after another",
        round(base_tps, 2),
        round(lmw_tps, 2),
        "tok/s",
        round(ratio, 2),
        ">= 2.5x",
        ratio >= 2.5,
        [text for text, _ in bare_out] == [r.text for r in comparison.results],
        {
            "variants": [v.label for v in variants],
            "new_tokens_per_column": n_tokens,
            "server_completion_tokens": [tokens for _, tokens in bare_out],
            "lmwidgets_tokens": [r.tokens for r in comparison.results],
            "bare_client_concurrent_tok_s": round(ceiling_tps, 2),
            "bare_client_concurrent_ratio": round(ceiling_tps / base_tps, 2),
        },
    )


def bench_streaming(bare: BareClient, n_tokens: int, repeats: int, warmup: int) -> Measurement:
    """One served column streamed through the runner into a headless live view vs bare httpx."""
    variant = _variants(n_tokens, model="served", four=False)[0]
    base_times, lmw_times, updates = [], [], []
    text = ""
    comparison = None
    for _ in range(warmup + repeats):
        seconds, (text, _) = _timed(bare.stream, variant.rendered.payload, n_tokens)
        base_times.append(seconds)
        view = _HeadlessView([variant])
        seconds, comparison = _timed(_run, [variant], view)
        lmw_times.append(seconds)
        updates.append(view.updates)
    base, lmw = statistics.median(base_times[warmup:]), statistics.median(lmw_times[warmup:])
    ratio = lmw / base
    return Measurement(
        "served: streaming one column into the widget vs a bare httpx client (time)",
        round(base, 3),
        round(lmw, 3),
        "s",
        round(ratio, 3),
        "<= 1.05x",
        ratio <= 1.05,
        text == comparison.results[0].text,
        {
            "new_tokens": n_tokens,
            "widget_updates": updates[-1],
            "note": "lmwidgets' time includes rendering the prompt (/tokenize, /detokenize)",
        },
    )


def bench_models(n_tokens: int, repeats: int, warmup: int, label: str = "") -> Measurement:
    """``--models local,served`` vs the slower of the two alone (wall time)."""
    local = _variants(n_tokens, model="local", four=False)
    served = _variants(n_tokens, model="served", four=False)
    both = _variants(n_tokens, models="local,served", four=False)
    local_times, served_times, both_times = [], [], []
    alone: dict[str, str] = {}
    together = None
    for _ in range(warmup + repeats):
        seconds, result = _timed(_run, local)
        local_times.append(seconds)
        alone["local"] = result.results[0].text
        seconds, result = _timed(_run, served)
        served_times.append(seconds)
        alone["served"] = result.results[0].text
        seconds, together = _timed(_run, both)
        both_times.append(seconds)
    local_s = statistics.median(local_times[warmup:])
    served_s = statistics.median(served_times[warmup:])
    slower = max(local_s, served_s)
    both_s = statistics.median(both_times[warmup:])
    ratio = both_s / slower
    texts = [r.text for r in together.results]
    return Measurement(
        f"served: --models local,served vs the slower alone (time){label}",
        round(slower, 3),
        round(both_s, 3),
        "s",
        round(ratio, 3),
        "<= 1.15x",
        ratio <= 1.15,
        texts == [alone["local"], alone["served"]],
        {
            "local_alone_s": round(local_s, 3),
            "served_alone_s": round(served_s, 3),
            "sum_alone_s": round(local_s + served_s, 3),
            "local_alone_tok_s": round(n_tokens / local_s, 2),
            "served_alone_tok_s": round(n_tokens / served_s, 2),
            "local_equals_served": alone["local"] == alone["served"],
            "new_tokens": n_tokens,
        },
    )


def bench_engines(n_tokens: int, repeats: int, warmup: int) -> Measurement:
    """The same 4 columns on the in-kernel engine and on vLLM (same model, one batch each)."""
    local = _variants(n_tokens, model="local")
    served = _variants(n_tokens, model="served")
    local_times, served_times = [], []
    local_cmp = served_cmp = None
    for _ in range(warmup + repeats):
        seconds, served_cmp = _timed(_run, served)
        served_times.append(seconds)
        seconds, local_cmp = _timed(_run, local)
        local_times.append(seconds)
    total = n_tokens * len(local)
    served_tps = total / statistics.median(served_times[warmup:])
    local_tps = total / statistics.median(local_times[warmup:])
    local_texts = [r.text for r in local_cmp.results]
    served_texts = [r.text for r in served_cmp.results]
    return Measurement(
        "engines: in-kernel (lmwidgets) vs vLLM, same model, 4 columns (tok/s)",
        round(served_tps, 2),
        round(local_tps, 2),
        "tok/s",
        round(local_tps / served_tps, 2),
        "(table row)",
        None,
        local_texts == served_texts,
        {
            "baseline": "vLLM (served engine)",
            "columns_equal": [a == b for a, b in zip(local_texts, served_texts, strict=True)],
            "prompts_equal": [
                a.prompt == b.prompt
                for a, b in zip(local_cmp.results, served_cmp.results, strict=True)
            ],
            "new_tokens_per_column": n_tokens,
        },
    )


# -- running -----------------------------------------------------------------------------------


def _row(function, *args) -> list[Measurement]:
    """One benchmark with its peak memory and the machine's load average before and after (the
    CPU is shared: other processes' load changes these numbers a lot; see benchmarks/README.md)."""
    before = os.getloadavg()[0]
    rows = _measured(function, *args)
    for row in rows:
        row.details["loadavg_1min"] = [round(before, 2), round(os.getloadavg()[0], 2)]
    return rows


def _suite(url: str, api_key_env: str | None, tokens: int, repeats: int, warmup: int, only):
    """Connect, load the local model and run the selected benchmarks against ``url``."""
    import lmwidgets
    from lmwidgets.engines.served import read_api_key

    served = lmwidgets.connect(url, name="served", api_key_env=api_key_env)
    if "local" not in [m.name for m in lmwidgets.models()]:
        lmwidgets.load_model(name="local")
    bare = BareClient(url, served.model_id, read_api_key(api_key_env))
    rows: list[Measurement] = []
    try:
        if "side" in only:
            rows += _row(bench_side_by_side, bare, tokens, repeats, warmup)
        if "streaming" in only:
            rows += _row(bench_streaming, bare, tokens * 2, repeats, warmup)
        if "models" in only:
            rows += _row(bench_models, tokens, repeats, warmup)
        if "engines" in only:
            rows += _row(bench_engines, tokens, repeats, warmup)
    finally:
        bare.close()
    return served.summary(), served.server_version, rows


def _split_cores(model_dir: Path, log_dir: Path, tokens: int, repeats: int) -> Measurement:
    """``--models local,served`` again, with vLLM on the last core and this process on the rest."""
    import torch

    import lmwidgets

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, kernel_cpus = cpus[-1], set(cpus[:-1])
    threads = torch.get_num_threads()
    lmwidgets.unload_model("served")
    with vllm_server(model_dir, log_dir / "vllm-split.log", cpus=str(server_cpu)) as url:
        os.sched_setaffinity(0, kernel_cpus)
        torch.set_num_threads(len(kernel_cpus))
        try:
            lmwidgets.connect(url, name="served")
            label = f" [vLLM on CPU {server_cpu}, kernel on {len(kernel_cpus)} other(s)]"
            row = _row(bench_models, tokens, repeats, 1, label)[0]
        finally:
            os.sched_setaffinity(0, set(cpus))
            torch.set_num_threads(threads)
            lmwidgets.unload_model("served")
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="A running server of the default model (else: start one).")
    parser.add_argument("--api-key-env", default=None, help="Variable holding its API key.")
    parser.add_argument("--quick", action="store_true", help="Few tokens, one repeat: a smoke run.")
    parser.add_argument("--json", type=Path, default=ROOT / "build" / "bench-served.json")
    parser.add_argument("--tokens", type=int, default=None, help="New tokens per column.")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument(
        "--only", default=None, help="Comma-separated subset: side,streaming,models,engines."
    )
    parser.add_argument(
        "--split-cores",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Also measure --models local,served with vLLM and the kernel on separate cores "
        "(restarts vLLM; default: on in a full run that starts its own server).",
    )
    args = parser.parse_args(argv)
    if args.url is None and not (VLLM_VENV / "bin" / "python").exists():
        print(f"served benchmarks skipped: no vLLM at {VLLM_VENV} (run `make vllm`)")
        return 0
    import torch

    from lmwidgets.engines.transformers.loading import served_checkpoint
    from lmwidgets.run.records import library_versions

    torch.manual_seed(0)
    tokens = args.tokens or (8 if args.quick else 64)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 0 if args.quick else 1  # rounds run before the measured ones
    only = set(args.only.split(",")) if args.only else {"side", "streaming", "models", "engines"}
    split = args.split_cores
    if split is None:
        split = not args.quick and args.url is None and len(os.sched_getaffinity(0)) >= 2
    model_dir = served_checkpoint()
    log_dir = Path(tempfile.mkdtemp(prefix="lmwidgets-bench-served-"))
    started = time.perf_counter()
    if args.url:
        summary, version, rows = _suite(args.url, args.api_key_env, tokens, repeats, warmup, only)
    else:
        with vllm_server(model_dir, log_dir / "vllm.log") as url:
            summary, version, rows = _suite(url, None, tokens, repeats, warmup, only)
    if split:
        rows.append(_split_cores(model_dir, log_dir, tokens, repeats))
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "quick": args.quick,
        "server": summary,
        "vllm_version": version,
        "cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "versions": library_versions(),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "results": [asdict(row) for row in rows],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(_table(rows))
    print(f"\nserver: {summary}\nvLLM logs: {log_dir}\nwritten: {args.json}")
    mismatched = [row.benchmark for row in rows if row.outputs_match is False]
    if mismatched:
        print(f"OUTPUT MISMATCH in: {', '.join(mismatched)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
