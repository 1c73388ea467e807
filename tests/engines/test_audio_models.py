"""Audio-language models in the kernel, on a tiny random Qwen2-Audio built offline: loading
through AutoModelForMultimodalLM, the processor path (resampling, audio tokens), batching, the
long-clip warning and audio for a model that takes none."""

import numpy as np
import pytest
from tiny_models import build_tiny_qwen2_audio

import lmwidgets
from lmwidgets.engines.base import GenerationSettings, PromptRow, StopSignal
from lmwidgets.errors import AudioError
from lmwidgets.media.audio import Clip, load_audio
from lmwidgets.prompting.content import with_media

RATE = 16_000


def tone(freq, seconds=1.0, rate=RATE):
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds=1.0, rate=22_050, seed=0):
    return np.random.default_rng(seed).normal(0, 0.2, int(seconds * rate)).astype(np.float32)


@pytest.fixture(scope="session")
def alm_dir(tmp_path_factory):
    return build_tiny_qwen2_audio(tmp_path_factory.mktemp("models") / "tiny-qwen2-audio")


@pytest.fixture
def alm(registry, alm_dir):
    return lmwidgets.load_model(str(alm_dir), name="alm")


def _row(engine, clips, text="What do you hear?"):
    messages = with_media([{"role": "user", "content": text}], ["audio"] * len(clips))
    return PromptRow(engine.render(messages, clips))


def _texts(engine, rows):
    outcome = engine.generate(rows, GenerationSettings(max_new_tokens=8), stop=StopSignal())
    assert outcome.error is None
    return [engine.text_of(output) for output in outcome.outputs]


def test_audio_models_load_through_the_multimodal_auto_class(alm):
    assert type(alm.model).__name__ == "Qwen2AudioForConditionalGeneration"
    assert alm.capabilities.media == {"audio"} and alm.kind == "audio"
    assert " · audio-language · " in alm.summary()
    assert alm.record()["modality"] == "audio+text"


def test_the_processor_expands_audio_tokens_at_its_own_rate(alm):
    short = _row(alm, [load_audio((tone(440), RATE), name="a")])
    # The same second at 22.05 kHz is resampled to the processor's 16 kHz: as many tokens.
    resampled = _row(alm, [load_audio((tone(440, rate=22_050), 22_050), name="b")])
    assert short.prompt.n_tokens == resampled.prompt.n_tokens
    longer = _row(alm, [load_audio((tone(440, seconds=2.0), RATE), name="c")])
    assert longer.prompt.n_tokens - short.prompt.n_tokens == 25  # 4 audio tokens per 0.16 s
    assert "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>" in short.prompt.text
    _ids, extra = short.prompt.payload
    assert extra["input_features"].shape == (1, 80, 3000)  # every clip padded to 30 s


def test_batched_rows_answer_as_each_alone(alm):
    clips = [
        load_audio((tone(220), RATE), name="low"),
        load_audio((tone(880), RATE), name="high"),
        load_audio((noise(), 22_050), name="noise"),
    ]
    rows = [_row(alm, [clip]) for clip in clips]
    rows.append(_row(alm, clips[:2], "Compare the two."))
    rows.append(_row(alm, []))  # a no-audio row shares the batch
    batched = _texts(alm, rows)
    alone = [_texts(alm, [row])[0] for row in rows]
    assert batched == alone
    assert len(set(batched[:3])) > 1  # the audio changes the answer


def test_long_clips_are_cut_to_the_processor_window_with_a_warning(alm):
    long = load_audio((np.zeros(35 * 8_000, dtype=np.float32) + 0.01, 8_000), name="talk")
    (note,) = alm.media_notes([long])
    assert "first 30 s" in note and "talk (35.0 s) is cut" in note
    assert alm.media_notes([long.with_clip(Clip(0, 20))]) == []
    assert alm.media_notes([load_audio((tone(440), RATE))]) == []


def test_audio_for_a_model_that_takes_none_is_refused(alm, tiny, vlm):
    clip = load_audio((tone(440), RATE), name="beep")
    with pytest.raises(AudioError, match=r"tiny is a text-only model .* audio inputs need"):
        tiny.check_media([clip])
    with pytest.raises(AudioError, match=r"vlm is a model of image .*Qwen2-Audio"):
        vlm.check_media([clip])
    alm.check_media([clip])  # accepted
    from lmwidgets.media.images import load_image

    with pytest.raises(lmwidgets.ImageError, match="alm is a model of audio"):
        alm.check_media([load_image(np.zeros((8, 8, 3), dtype=np.uint8))])
