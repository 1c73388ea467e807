"""Audio prompts end to end on a tiny random Qwen2-Audio: lmwidgets.prompt and %%prompt with
--audio, {audio} placeholders, --clip, --sample-rate, the no-audio column, records, re-runs, the
static copy, the widget's waveform, the long-clip note and the bad inputs."""

import numpy as np
import pytest
from tiny_models import build_tiny_qwen2_audio

import lmwidgets
from lmwidgets.errors import AudioError

RATE = 16_000


def tone(freq=440.0, seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="session")
def alm_dir(tmp_path_factory):
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("models") / "tiny-qwen2-audio")


@pytest.fixture
def alm(registry, alm_dir):
    return lmwidgets.load_model(str(alm_dir), name="alm")


def _run(text="What do you hear?", **kwargs):
    kwargs.setdefault("max_new_tokens", 6)
    kwargs.setdefault("display", False)
    return lmwidgets.prompt(text, **kwargs)


def test_the_clip_changes_the_answer_and_batching_changes_nothing(alm):
    both = _run(media={"audio": [(tone(220), RATE)]}, compare="zero-shot,no-audio")
    with_audio, without = both["zero-shot"], both["no-audio"]
    assert with_audio.record["generation"]["batch_size"] == 16  # one batch
    assert _run(media={"audio": [(tone(220), RATE)]}).text == with_audio.text
    assert _run().text == without.text
    assert without.record["prompt"]["media"] == []
    (entry,) = with_audio.record["prompt"]["media"]
    assert entry["kind"] == "audio" and entry["rate"] == RATE and entry["channels"] == 1
    assert entry["duration"] == 1.0 and len(entry["sha256"]) == 64
    (preview,) = both.media
    assert preview["src"].startswith("data:image/png;base64,") and preview["caption"] == "1.0 s"


def test_placeholders_place_clips_and_must_match(alm):
    two = _run(
        "Compare {audio} with {audio}.", media={"audio": [(tone(220), RATE), (tone(880), RATE)]}
    )
    parts = two[0].record["prompt"]["messages"][-1]["content"]
    assert [p["type"] for p in parts] == ["text", "audio", "text", "audio", "text"]
    assert two[0].prompt.count("<|audio_bos|>") == 2
    with pytest.raises(AudioError, match=r"2 \{audio\} placeholder"):
        _run("{audio} and {audio}", media={"audio": [(tone(), RATE)]})


def test_clips_files_and_sample_rates_are_recorded_and_rerun(alm, tmp_path):
    import soundfile

    path = tmp_path / "speech.flac"
    soundfile.write(path, np.stack([tone(300, 2.0), tone(500, 2.0)], axis=1), RATE)
    beep = tone(440, 1.5)
    out = _run(
        "{audio} then {audio}",
        media={"audio": [str(path), "beep"]},
        variables={"beep": beep},
        sample_rate=RATE,
        clip="2:0.5,1.0",
    )
    file_entry, beep_entry = out[0].record["prompt"]["media"]
    assert (
        file_entry["source"] == "file"
        and file_entry["channels"] == 2
        and file_entry["bytes_sha256"]
    )
    assert "clip" not in file_entry
    assert beep_entry["clip"] == [0.5, 1.0] and beep_entry["source"] == "variable"
    report = lmwidgets.rerun(out, namespace={"beep": beep})  # the array carries no rate
    assert report.matched, report.rows


def test_bad_audio_options_are_clear_errors_before_anything_runs(alm, tiny):
    clip = {"audio": [(tone(), RATE)]}
    cases = [
        (dict(media=clip, clip="0.5,3"), r"outside the audio \(1.000 s\)"),
        (dict(media=clip, clip="3:0,1"), "names clip 3"),
        (dict(clip="0,1"), "needs audio"),
        (dict(media={"audio": ["beep"]}, variables={"beep": tone()}), "no sample rate"),
        (dict(media={"audio": ["missing.wav"]}), "No audio file"),
        (dict(media=clip, model="tiny"), "tiny is a text-only model"),
    ]
    heard = [{"input": "What is it?", "audio": (tone(), RATE)}]
    cases += [
        (dict(media=clip, clip="5,2"), r"--clip 5,2 is empty: the start must come before"),
        (dict(dataset=[{"input": "x", "audio": "gone.wav"}]), r"dataset\[0\]\['audio'\]: no audio"),
        (dict(dataset=heard, model="tiny"), "tiny is a text-only model"),
        (dict(dataset=heard, clip="0,0.5"), "A dataset's own clips .* are not cut by --clip"),
    ]
    for options, match in cases:
        with pytest.raises(AudioError, match=match):
            _run(**options)
    with pytest.raises(lmwidgets.StrategyError, match="give audio with --audio X"):
        _run(compare="zero-shot,no-audio")
    clips = [{"input": "What is it?", "sound": (tone(), RATE)}]
    with pytest.raises(lmwidgets.ImageError, match="say --media-column sound:audio"):
        _run("{input}", dataset=clips, media_column="sound", model="alm")
    assert _run("{input}", dataset=clips, media_column="sound:audio", model="alm").status == "done"
    with pytest.raises(
        lmwidgets.DatasetError, match=r"dataset has no column 'snd' \(its columns: input, sound\)"
    ):
        _run("{input}", dataset=clips, media_column="snd:audio", model="alm")


def test_long_clips_are_cut_with_a_note(alm):
    long = (np.full(31 * 4_000, 0.01, dtype=np.float32), 4_000)
    out = _run(media={"audio": [long]})
    assert any("hears only the first 30 s" in note for note in out.notes)
    cut = _run(media={"audio": [long]}, clip="0,20")
    assert not any("30 s" in note for note in cut.notes)


def test_the_magic_the_widget_and_the_static_copy(shell, alm, capsys):
    from ipywidgets.widgets.widget import _instances as widgets

    from lmwidgets.notebook.widgets import PromptView
    from lmwidgets.sharing.static_render import render_html, render_markdown

    help_text = shell.run_cell("%prompt --help")
    out = capsys.readouterr().out
    assert help_text.success and "--audio" in out and "--clip" in out and "--sample-rate" in out
    shell.user_ns["beep"] = tone(440, 2.0)
    before = set(widgets)
    cell = "%%prompt --audio beep --sample-rate 16000 --clip 0.5,1.5 -n 4 --out heard\nWhat is it?"
    assert shell.run_cell(cell).success
    heard = shell.user_ns["heard"]
    assert heard[0].record["prompt"]["media"][0]["clip"] == [0.5, 1.0 + 0.5]
    (view,) = [w for key, w in widgets.items() if key not in before and isinstance(w, PromptView)]
    (preview,) = view.media
    assert preview["kind"] == "audio" and preview["duration"] == 1.0
    assert "audio/wav" not in str(view.get_state())  # the saved notebook keeps no audio
    sent = []
    view.send = lambda content, buffers=None: sent.append(content)
    view._on_message(view, {"type": "audio", "index": 0}, [])
    assert sent[-1]["src"].startswith("data:audio/wav;base64,")
    static = render_html(heard)
    assert preview["src"] in static and "audio/wav" not in static
    assert "beep (1.0 s of 2.0 s, 0.5-1.5 s)" in render_markdown(heard).replace("\\", "")
    capsys.readouterr()
    assert shell.run_cell("%lm rerun heard").success
    assert "1 of 1 texts match" in capsys.readouterr().out
    bad = shell.run_cell("%%prompt --audio beep\nWhat is it?")
    assert isinstance(bad.error_in_exec, AudioError) and "--sample-rate" in str(bad.error_in_exec)


def test_a_dataset_gives_each_item_its_own_clip(alm, tmp_path):
    import soundfile

    path = tmp_path / "low.wav"
    soundfile.write(path, tone(220), RATE)
    items = [
        {"input": "Steady?", "audio": str(path), "expected": "yes"},
        {"input": "Steady?", "audio": (tone(880, 0.5), RATE), "expected": "yes"},
    ]
    out = _run("{input}", dataset=items, compare="zero-shot,no-audio")
    own = [r.record["prompt"]["media"] for r in out if r.record["strategy"]["name"] == "zero-shot"]
    assert [m[0]["name"] for m in own] == ["low.wav", "item 1 audio"]
    assert own[1][0]["duration"] == 0.5
    alone = _run("Steady?", media={"audio": [(tone(880, 0.5), RATE)]})
    zero_shot = [r for r in out if r.record["strategy"]["name"] == "zero-shot"]
    assert zero_shot[1].text == alone.text  # batched with the other item: the same answer
    with pytest.raises(AudioError, match="without a sample rate"):
        _run("{input}", dataset=[{"input": "x", "audio": tone()}])


def test_columns_hearing_one_clip_share_its_features_and_nothing_changes(alm):
    """The Whisper features of a clip are computed once for every column that hears it: the
    token ids, features and texts equal those computed per column."""
    from lmwidgets.engines.transformers.multimodal import FeatureCache, encode, feature_cache
    from lmwidgets.media.audio import load_audio

    cache = feature_cache(alm.processor)
    assert isinstance(cache, FeatureCache) and feature_cache(alm.processor) is cache
    assert cache.sampling_rate == RATE  # everything else is the extractor's
    clip, other = load_audio((tone(220), RATE), name="a"), load_audio((tone(880), RATE), name="b")
    text = "<|audio_bos|><|AUDIO|><|audio_eos|> and <|audio_bos|><|AUDIO|><|audio_eos|>?"
    cache.capacity = 0
    plain = encode(alm, text, [clip, other])
    cache.capacity, cache.hits = 8, 0
    first, again = encode(alm, text, [clip, other]), encode(alm, text, [other, clip])
    assert cache.hits == 2 and first[0] == plain[0]
    for key, value in plain[1].items():
        assert first[1][key].dtype == value.dtype and bool((first[1][key] == value).all())
        assert bool((again[1][key][0] == value[1]).all())
    first[1]["input_features"].zero_()  # what a row gets is its own copy
    assert bool(
        (encode(alm, text, [clip, other])[1]["input_features"] == plain[1]["input_features"]).all()
    )
    # A whole run: four wordings of one question about one clip, texts as without the cache.
    questions = ["What do you hear?", "Describe the sound.", "Name the sound.", "Is it loud?"]
    runs = []
    for capacity in (0, 8):
        cache.capacity = capacity
        cache.clear()
        runs.append(
            [r.text for r in _run("", prompts=questions, media={"audio": [(tone(330), RATE)]})]
        )
    assert runs[0] == runs[1] and cache.hits == 3
    hits = cache.hits  # other paddings join clips of different lengths: not cached
    cache(list([tone(220), tone(220)]), sampling_rate=RATE, padding="longest")
    assert cache.hits == hits
    cache.capacity = 1  # a full cache drops its oldest clip
    encode(alm, text, [clip, other])
    assert len(cache._kept) == 1
