"""The response cache: identical greedy or seeded requests answered from disk, keyed by everything
that determines the output; what is never kept; several kernels at once; a corrupt store; the
size bound; the magics; the "cached" mark in the record, the static copy and the live view."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image

import lmwidgets
from lmwidgets.engines.base import RowOutput, StopSignal, TokenLogprob
from lmwidgets.run.cache import (
    DATABASE,
    SETTINGS,
    ResponseCache,
    cache_location,
    close_connections,
)
from lmwidgets.run.cache_keys import (
    CachedColumn,
    adapter_identity,
    decode_column,
    encode_column,
    model_identity,
)

ROOT = Path(__file__).resolve().parents[2]
ANSWER = "Paris is the capital of France."


@pytest.fixture
def scripted(registry):
    return lmwidgets.load_model(engine="scripted", name="s", replies={"*": ANSWER})


def ask(text: str = "Capital of France?", **options):
    options.setdefault("display", False)
    return lmwidgets.prompt(text, **options)


def entries() -> int:
    with ResponseCache() as cache:
        return cache.stats().entries


# Hits ------------------------------------------------------------------------------------------


def test_an_identical_greedy_run_is_answered_from_the_cache(scripted):
    first = ask(compare="zero-shot,cot")
    calls = len(scripted.calls)
    again = ask(compare="zero-shot,cot")
    assert len(scripted.calls) == calls  # nothing generated
    assert [r.cached for r in first] == [False, False] and [r.cached for r in again] == [True] * 2
    for old, new in zip(first, again, strict=True):
        assert (new.text, new.answer, new.tokens, new.finish_reason) == (
            old.text,
            old.answer,
            old.tokens,
            old.finish_reason,
        )
        # The record says so, names the run that generated it and keeps that run's timing.
        assert new.record["cached"] is True and "cached" not in old.record
        assert new.record["timing"]["cached_from"] == {
            "run": old.record["run"],
            "created": old.record["created"],
        }
        assert new.record["timing"]["seconds"] == old.record["timing"]["seconds"]
        assert new.record["run"] != old.record["run"]
    assert entries() == 2


def test_a_seeded_sampled_run_on_a_real_model_hits_with_the_same_tokens(tiny):
    options = {"temperature": 0.9, "seed": 7, "max_new_tokens": 10, "logprobs": 3}
    first, again = ask("Story:", **options)[0], ask("Story:", **options)[0]
    assert not first.cached and again.cached
    assert again.text == first.text and again.tokens == first.tokens
    assert again.tokens_detail == first.tokens_detail and again.confidence == first.confidence
    assert again.record["generation"]["seed"] == 7
    assert again.record["output"]["tokens_detail"] == first.record["output"]["tokens_detail"]


def test_a_greedy_run_on_a_real_model_hits_and_a_new_setting_misses(tiny):
    first = ask("Hello", max_new_tokens=6)[0]
    assert ask("Hello", max_new_tokens=6)[0].cached
    other = ask("Hello", max_new_tokens=5)[0]
    assert not other.cached and other.tokens <= 5
    assert first.text.startswith(other.text) or other.finish_reason == "eos"


def test_the_same_weights_under_another_name_hit(registry):
    lmwidgets.load_model(engine="scripted", name="one", replies={"*": ANSWER})
    ask(model="one")
    lmwidgets.load_model(engine="scripted", name="two", replies={"*": ANSWER})
    assert ask(model="two")[0].cached  # the name labels the model, the replies are what runs


def test_a_seed_does_not_split_greedy_runs(scripted):
    ask(seed=1)
    assert ask(seed=2)[0].cached  # greedy decoding ignores the seed


# Misses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"text": "Capital of Italy?"},
        {"system": "Answer briefly."},
        {"max_new_tokens": 4},
        {"temperature": 0.5, "seed": 1},
        {"logprobs": 2},
        {"strategy": "cot"},
    ],
)
def test_any_keyed_change_misses(scripted, change):
    ask(seed=1)
    options = dict(change)
    text = options.pop("text", "Capital of France?")
    assert not ask(text, **options)[0].cached


def test_seed_top_p_and_samples_of_a_sampled_run_are_keyed(scripted):
    ask(temperature=0.7, seed=1)
    assert ask(temperature=0.7, seed=1)[0].cached
    assert not ask(temperature=0.7, seed=2)[0].cached
    assert not ask(temperature=0.7, seed=1, top_p=0.9)[0].cached
    ask(strategy="self-consistency", samples=3, seed=1)
    assert ask(strategy="self-consistency", samples=3, seed=1)[0].cached
    assert not ask(strategy="self-consistency", samples=4, seed=1)[0].cached


def test_another_model_misses(registry):
    lmwidgets.load_model(engine="scripted", name="a", replies={"*": ANSWER})
    lmwidgets.load_model(engine="scripted", name="b", replies={"*": "Rome."})
    ask(model="a")
    fresh = ask(model="b")[0]
    assert not fresh.cached and fresh.text == "Rome."


def test_media_are_keyed_by_content(registry):
    lmwidgets.load_model(engine="scripted", name="v", media=("image",), replies={"*": ANSWER})
    red, blue = Image.new("RGB", (8, 8), "red"), Image.new("RGB", (8, 8), "blue")
    ask("What colour? {img}", images=[red])
    assert ask("What colour? {img}", images=[Image.new("RGB", (8, 8), "red")])[0].cached
    assert not ask("What colour? {img}", images=[blue])[0].cached
    assert not ask("What colour? {img}", images=[red], region="0,0,4,4")[0].cached


def test_adapters_are_keyed_by_their_weights(tiny, tmp_path):
    from tiny_models import build_lora

    lmwidgets.load_adapter(build_lora(tiny.source.location, tmp_path / "a1", seed=1), name="a1")
    base = ask("Hello", max_new_tokens=6, adapters="base,a1")
    assert [r.cached for r in base] == [False, False]
    assert [r.cached for r in ask("Hello", max_new_tokens=6, adapters="base,a1")] == [True, True]
    # Other weights under the same name: a miss.
    lmwidgets.unload_adapter("a1")
    lmwidgets.load_adapter(build_lora(tiny.source.location, tmp_path / "b", seed=2), name="a1")
    assert [r.cached for r in ask("Hello", max_new_tokens=6, adapters="base,a1")] == [True, False]


# Never kept ------------------------------------------------------------------------------------


def test_the_run_speed_leaves_cached_answers_out(scripted):
    # A fully cached judging run said "490.6 tok/s": a speed the model never had.
    # The run's time is measured by the live view; here each run says it took 0.5 s.
    first = ask(compare="zero-shot")
    first.seconds = 0.5
    assert (
        first.throughput() == f"{first[0].tokens} tokens in 0.5 s · {first[0].tokens * 2:.1f} tok/s"
    )
    again = ask(compare="zero-shot")
    again.seconds = 0.5
    tokens = again[0].tokens
    assert again.throughput() == f"{tokens} tokens, all from the response cache"
    mixed = ask(compare="zero-shot,cot")
    assert [r.cached for r in mixed] == [True, False]
    mixed.seconds = 0.5
    speed = mixed.throughput()
    assert speed.startswith(f"{mixed[1].tokens} tokens in ")
    assert speed.endswith("tok/s (1 of 2 cached)")
    # Beside an earlier run (--vs): its columns are neither generated nor cached answers.
    beside = ask(compare="zero-shot", vs=again)
    beside.seconds = 0.5
    assert beside.throughput() == (
        f"{tokens} tokens, all from the response cache · 1 column as it ran before"
    )


def test_a_sampled_run_without_a_seed_is_never_cached(scripted):
    first = ask(temperature=0.8)[0]
    again = ask(temperature=0.8)[0]
    assert not first.cached and not again.cached and entries() == 0
    assert not ask(strategy="self-consistency", samples=3)[0].cached and entries() == 0


def test_code_that_cannot_be_pinned_is_never_cached(registry):
    lmwidgets.load_model(engine="scripted", name="code", replies=lambda text, adapter: "hi")
    ask(model="code")
    assert not ask(model="code")[0].cached and entries() == 0
    lmwidgets.load_model(engine="scripted", name="loud", adapters={"up": str.upper})
    ask(model="loud", adapters="base,up")
    assert [r.cached for r in ask(model="loud", adapters="base,up")] == [True, False]


def test_a_stopped_column_is_never_stored_but_its_finished_neighbour_is(registry):
    lmwidgets.load_model(engine="scripted", name="quick", replies={"*": "Yes."})
    long = " ".join(f"w{i}" for i in range(200))
    lmwidgets.load_model(engine="scripted", name="slow", replies={"*": long}, step_seconds=0.01)
    stop = StopSignal()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        stopped = ask(models="quick,slow", stop=stop)
    finally:
        timer.cancel()
    assert stopped.status == "stopped" and stopped["slow"].finish_reason == "stopped"
    assert stopped["quick"].finish_reason == "eos" and entries() == 1
    again = ask(models="quick,slow", max_new_tokens=256)
    assert [r.cached for r in again] == [True, False] and again["slow"].text == long


def test_a_failed_column_is_never_stored(registry):
    engine = lmwidgets.load_model(engine="scripted", name="oom", replies={"*": ANSWER})
    engine.fail_after = 2
    with pytest.raises(lmwidgets.OutOfMemoryError) as failed:
        ask()
    assert failed.value.partial[0].finish_reason == "error" and entries() == 0
    engine.fail_after = None
    assert not ask()[0].cached and ask()[0].cached


def test_no_cache_neither_reads_nor_writes(scripted):
    assert not ask(cache=False)[0].cached and entries() == 0
    ask()
    assert not ask(cache=False)[0].cached and ask()[0].cached


def test_the_process_default_turns_it_off(scripted, monkeypatch):
    monkeypatch.setattr(SETTINGS, "enabled", False)
    ask()
    assert not ask()[0].cached and entries() == 0
    assert ask(cache=True)[0].cached is False and ask(cache=True)[0].cached


def test_cache_must_be_a_flag(scripted):
    with pytest.raises(lmwidgets.InvalidArgumentError, match="cache"):
        ask(cache="yes")


def test_a_rerun_of_records_generates_again(scripted):
    first = ask()
    assert ask()[0].cached
    report = lmwidgets.rerun(first, display=False)
    assert not report.comparisons[0][0].cached  # a re-run checks reproducibility


# Keys and entries ------------------------------------------------------------------------------


def test_served_models_are_keyed_by_url_id_and_version_and_labels_are_not():
    record = {
        "engine": "openai",
        "name": "big",
        "source": "http://127.0.0.1:8000/v1",
        "kind": "served",
        "server": "vllm",
        "server_version": "0.11.0",
        "model_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "weights_sha256": None,
    }
    identity = model_identity(record)
    assert identity is not None and "name" not in identity
    assert identity["source"] == record["source"] and identity["server_version"] == "0.11.0"
    local = {"name": "x", "source": "/models/x", "location": "/models/x", "weights_sha256": "ab"}
    assert model_identity(local) == {"weights_sha256": "ab"}
    assert model_identity({"name": "code", "weights_sha256": None}) is None
    assert adapter_identity(None) == {}
    assert adapter_identity({"name": "up", "scripted": True}) is None
    assert adapter_identity({"name": "p", "served": True, "path": None}) == {
        "name": "p",
        "served": True,
        "path": None,
    }


def test_a_drawn_seed_or_an_earlier_column_has_no_key(registry):
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.cache_keys import column_key
    from lmwidgets.run.runner import prepare

    lmwidgets.load_model(engine="scripted", name="s", replies={"*": ANSWER})
    settings = lmwidgets.GenerationSettings(temperature=0.7, seed=4)
    plan = build_variants("Hi", registry=registry, model="s", system=None, settings=settings)
    variant = plan.variants[0]
    prepare(variant, [])
    assert column_key(variant) is not None
    variant.seed_drawn = True  # drawn for the run (--trials without --seed): as good as none
    assert column_key(variant) is None
    variant.seed_drawn = False
    variant.precomputed = object()  # an earlier run's column shown beside this one
    assert column_key(variant) is None


def test_entries_round_trip_with_log_probabilities():
    token = TokenLogprob(5, " Paris", -0.25, ((5, " Paris", -0.25), (9, " Lyon", float("-inf"))))
    column = CachedColumn(
        [RowOutput(token_ids=[5], finish_reason="eos", seconds=0.5, logprobs=[token])],
        None,
        "run1",
        "2025-01-01T00:00:00+00:00",
    )
    back = decode_column(encode_column(column))
    assert back.outputs[0].logprobs == [token] and back.outputs[0].token_ids == [5]
    assert (back.run, back.seed, back.outputs[0].finish_reason) == ("run1", None, "eos")


def _column(i: int, size: int = 100) -> CachedColumn:
    return CachedColumn([RowOutput(pieces=["x" * size, str(i)], finish_reason="eos")], i, "r", "t")


def test_the_size_bound_evicts_the_least_recently_used(tmp_path):
    with ResponseCache(tmp_path, limit_bytes=10_000) as cache:
        one_size = len(zlib.compress(encode_column(_column(0, 2000)))) + 2
        cache.limit_bytes = one_size * 3 + one_size // 2  # room for three entries
        for i in range(3):
            cache.put_many([(f"k{i}", _column(i, 2000))])
            time.sleep(0.01)  # distinct use times
        assert cache.get_many(["k0"])  # k0 is now the most recently used; k1 the least
        time.sleep(0.01)
        cache.put_many([("k3", _column(3, 2000))])
        assert set(cache.get_many(["k0", "k1", "k2", "k3"])) == {"k0", "k2", "k3"}
        assert cache.stats().bytes <= cache.limit_bytes
        big = CachedColumn([RowOutput(pieces=[str(i) for i in range(50_000)])], None, "r", "t")
        assert cache.put_many([("big", big)]) == 0  # larger than the whole bound: not kept
        assert cache.stats().entries == 3


def test_the_size_bound_follows_the_setting(scripted, monkeypatch):
    monkeypatch.setattr(SETTINGS, "limit_bytes", 1)
    ask()
    assert entries() == 0 and not ask()[0].cached


# Several kernels, broken stores ----------------------------------------------------------------

WRITER = """
import sys
from pathlib import Path
from lmwidgets.engines.base import RowOutput
from lmwidgets.run.cache import ResponseCache
from lmwidgets.run.cache_keys import CachedColumn

name, directory = sys.argv[1], Path(sys.argv[2])
for i in range(40):
    column = CachedColumn([RowOutput(pieces=[name, str(i)], finish_reason="eos")], i, name, "t")
    shared = CachedColumn([RowOutput(pieces=["shared", str(i)], finish_reason="eos")], i, name, "t")
    with ResponseCache(directory) as cache:
        assert cache.put_many([(f"{name}-{i}", column), (f"shared-{i}", shared)]) == 2
        assert cache.get_many([f"{name}-{i}"])[f"{name}-{i}"].outputs[0].pieces == [name, str(i)]
print("ok")
"""


def test_two_processes_write_the_same_cache_at_once(tmp_path):
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, str(tmp_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("a", "b")
    ]
    for writer in writers:
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0 and out.strip() == "ok", err
    with ResponseCache(tmp_path) as cache:
        assert cache.stats().entries == 120
        keys = [f"{n}-{i}" for n in ("a", "b", "shared") for i in range(40)]
        found = cache.get_many(keys)
        assert len(found) == 120 and found["shared-7"].outputs[0].pieces == ["shared", "7"]


def test_a_corrupt_store_is_set_aside_with_a_note_and_the_run_goes_on(scripted):
    ask()
    close_connections()  # a new kernel finds the file broken
    path = cache_location() / DATABASE
    for side in path.parent.glob(DATABASE + "-*"):
        side.unlink()
    path.write_bytes(b"this is not a database" * 100)
    comparison = ask()
    assert comparison[0].text == ANSWER and not comparison[0].cached
    notes = [n for n in comparison.notes if "could not be read" in n]
    assert len(notes) == 1 and "\n" not in notes[0] and "set aside" in notes[0]
    assert len(list(path.parent.glob(DATABASE + ".corrupt-*"))) == 1
    assert ask()[0].cached  # the new store works


def test_an_unreadable_entry_is_dropped_and_generated_again(scripted):
    ask()
    close_connections()
    with sqlite3.connect(cache_location() / DATABASE) as db:
        db.execute("UPDATE entries SET value = ?", (b"garbage",))
    again = ask()
    assert not again[0].cached and again[0].text == ANSWER and again.notes == []
    assert ask()[0].cached


def test_a_removed_store_is_started_again(scripted):
    ask()
    shutil.rmtree(cache_location())  # under a kernel that keeps its connection open
    assert not ask()[0].cached and entries() == 1 and ask()[0].cached


def test_a_store_that_cannot_be_used_costs_only_the_cache(scripted, tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("LMWIDGETS_CACHE", str(blocked))
    comparison = ask()
    assert comparison[0].text == ANSWER and not comparison[0].cached
    assert any("response cache could not be used" in n for n in comparison.notes)


# The mark and the magics -----------------------------------------------------------------------


def test_cached_is_marked_in_the_static_copy(scripted):
    first = ask()
    again = ask()
    assert "cached" not in first.to_html() and "cached" not in first.to_text()
    html, text, markdown = again.to_html(), again.to_text(), again.to_markdown()
    assert 'class="lmw-flag"' in html and ">cached</span>" in html
    assert "· cached]" in text and "· cached" in markdown
    assert again.to_pandas()["cached"].tolist() == [True]
    assert '"cached": true' in again.to_json()


def test_cached_columns_show_at_once_and_are_marked_in_the_live_view(registry):
    from lmwidgets.notebook.live import LiveView
    from lmwidgets.prompting.strategies import build_variants
    from lmwidgets.run.runner import run_variants

    lmwidgets.load_model(engine="scripted", name="s", replies={"*": ANSWER})

    def variants(compare: str):
        plan = build_variants(
            "Capital?",
            registry=registry,
            model="s",
            system=None,
            settings=lmwidgets.GenerationSettings(max_new_tokens=32),
            compare=compare,
        )
        return plan.variants

    run_variants(variants("zero-shot"), cache=True)
    plan = variants("zero-shot,cot")
    view = LiveView(plan, "t", show=False)
    first_push: list[list[dict]] = []
    update = view.update_running

    def record(stream):
        if not first_push:
            first_push.append([dict(c) for c in (view._running_cell(stream, i) for i in (0, 1))])
        update(stream)

    view.update_running = record
    comparison = run_variants(plan, view=view, cache=True)
    cached_cell, fresh_cell = first_push[0]
    assert (
        cached_cell["text"] == ANSWER and cached_cell["cached"] and "cached" in cached_cell["stats"]
    )
    assert fresh_cell["text"] == "" and not fresh_cell["cached"]  # not generated yet
    final = view.widget.columns
    assert [c["cached"] for c in final] == [True, False]
    assert "cached" in final[0]["stats"] and "cached" not in final[1]["stats"]
    assert [r.cached for r in comparison] == [True, False]


def test_lm_cache_shows_and_clears(shell, capsys):
    assert shell.run_cell("%lm load --engine scripted --as lmw_s").success
    assert shell.run_cell("%%prompt -n 8\nHello").success
    capsys.readouterr()
    assert shell.run_cell("%lm cache").success
    out = capsys.readouterr().out
    assert str(cache_location()) in out and "1 entry" in out and "limit 1.0 GB; on" in out
    assert shell.run_cell("%lm cache info").success
    assert "1 entry" in capsys.readouterr().out
    assert shell.run_cell("%lm cache clear").success
    assert "Cleared the response cache" in capsys.readouterr().out and entries() == 0
    assert shell.run_cell("%%prompt -n 8 --out lmw_x\nHello").success
    assert not shell.user_ns["lmw_x"][0].cached  # this kernel's next run sees it cleared
    assert shell.run_cell("%lm cache clear --help").success
    assert "Remove every cached answer" in capsys.readouterr().out
    assert shell.run_cell("%lm cache --help").success
    assert "$LMWIDGETS_CACHE/responses" in capsys.readouterr().out


@pytest.fixture
def restored_config(shell):
    """The shell's LmMagics cache settings as shipped, after the test changed them."""
    yield shell
    shell.run_cell("%config LmMagics.cache = True")
    shell.run_cell("%config LmMagics.cache_size_mb = 1000")


def test_no_cache_flag_and_config(restored_config, capsys, caplog):
    shell = restored_config
    assert shell.run_cell("%lm load --engine scripted --as lmw_s").success
    assert shell.run_cell("%%prompt -n 8 --out lmw_a\nHello").success
    assert shell.run_cell("%%prompt -n 8 --out lmw_b\nHello").success
    assert shell.user_ns["lmw_b"][0].cached
    assert shell.run_cell("%%prompt -n 8 --no-cache --out lmw_c\nHello").success
    assert not shell.user_ns["lmw_c"][0].cached
    assert shell.run_cell("%config LmMagics.cache = False").success
    assert shell.run_cell("%%prompt -n 8 --out lmw_d\nHello").success
    assert not shell.user_ns["lmw_d"][0].cached and not SETTINGS.enabled
    assert shell.run_cell("%lm cache").success
    assert "off (%config LmMagics.cache = True" in capsys.readouterr().out
    assert shell.run_cell("%config LmMagics.cache = True").success
    assert shell.run_cell("%config LmMagics.cache_size_mb = 5").success
    assert SETTINGS.enabled and SETTINGS.limit_bytes == 5_000_000
    shell.run_cell("%config LmMagics.cache_size_mb = 0")  # %config logs the refusal
    assert "cache_size_mb must be at least 1, not 0" in caplog.text
    assert SETTINGS.limit_bytes == 5_000_000
