"""Audio clips: every accepted value and file format, identity, clips, the waveform picture,
the served content part, and each bad input as a clear AudioError."""

import base64
import io
import json
import wave

import numpy as np
import pytest
import soundfile

from lmwidgets.errors import AudioError, LmWidgetsError
from lmwidgets.media import audio as A

RATE = 16_000


def tone(freq=440.0, seconds=1.0, rate=RATE, amplitude=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def encoded(samples, rate=RATE, format="WAV", **kwargs):
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=format, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("format", ["WAV", "FLAC", "OGG", "MP3"])
def test_files_of_every_format_decode_with_their_rate_and_channels(tmp_path, format):
    stereo = np.stack([tone(220, rate=22_050), tone(330, rate=22_050)], axis=1)  # (frames, ch)
    path = tmp_path / f"clip.{format.lower()}"
    path.write_bytes(encoded(stereo, 22_050, format))
    clip = A.resolve_audio(str(path))
    assert (clip.name, clip.source, clip.location) == (path.name, "file", str(path))
    assert clip.rate == 22_050 and clip.channels == 2
    assert clip.duration == pytest.approx(1.0, abs=0.06)  # MP3 frames round it a little
    assert clip.bytes_sha256 and len(clip.sha256) == 64
    heard = clip.model_audio(RATE)  # mono, resampled by soxr
    assert heard.dtype == np.float32 and heard.ndim == 1
    assert len(heard) == pytest.approx(RATE * clip.duration, abs=2)


def test_arrays_tensors_tuples_ipython_and_bytes_are_the_same_sound():
    import torch
    from IPython.display import Audio

    samples = tone()
    from_array = A.load_audio(samples, name="a", sample_rate=RATE)
    from_tuple = A.load_audio((samples, RATE), name="t")
    from_tensor = A.load_audio(torch.from_numpy(samples), name="x", sample_rate=RATE)
    assert from_array.sha256 == from_tuple.sha256 == from_tensor.sha256
    assert from_array.bytes_sha256 is None and from_array.source == "variable"
    pcm = encoded(samples, subtype="FLOAT")  # lossless: the same samples as the array
    from_bytes = A.load_audio(pcm, name="b")
    assert from_bytes.sha256 == from_array.sha256 and from_bytes.bytes_sha256
    from_ipython = A.load_audio(Audio(samples, rate=RATE), name="ip")  # 16-bit PCM inside
    assert from_ipython.rate == RATE and from_ipython.duration == pytest.approx(1.0)
    # Integer PCM arrays are scaled to [-1, 1]; channels may come either way round.
    pcm16 = (samples * 32767).astype(np.int16)
    assert np.abs(A.load_audio((pcm16, RATE)).samples).max() <= 1.0
    assert A.load_audio((np.zeros((RATE, 2)), RATE)).channels == 2
    assert A.load_audio((np.zeros((2, RATE)), RATE)).channels == 2


def test_a_notebook_variable_wins_over_a_file_of_that_name(tmp_path):
    clip = A.resolve_audio("beep", {"beep": (tone(), RATE)})
    assert clip.name == "beep"
    with pytest.raises(AudioError, match=r"No audio file 'nope\.wav'"):
        A.resolve_audio("nope.wav", {})


def test_clips_cut_the_audio_and_are_recorded():
    clip = A.load_audio((tone(seconds=3.0), RATE), name="long")
    part = clip.with_clip(A.parse_clip("0.5,2"))
    assert part.heard_seconds == pytest.approx(1.5)
    assert len(part.model_audio(8_000)) == 12_000
    record = part.record()
    assert record["clip"] == [0.5, 2.0] and record["duration"] == 3.0
    assert {"sha256", "bytes_sha256", "rate", "channels"} <= set(record)
    assert part.sha256 == clip.sha256  # identity is the whole clip's; the part is recorded
    assert part.widget_data()["duration"] == 1.5
    assert A.parse_clip("2:1,4") == A.Clip(1.0, 4.0, audio=1)
    cut = A.apply_clip([clip, clip], A.Clip(0, 1, audio=1))
    assert cut[0].clip is None and cut[1].clip == A.Clip(0, 1, audio=1)


@pytest.mark.parametrize(
    "text, match",
    [
        ("1", "start and end"),
        ("a,b", "start and end"),
        ("1,2,3", "start and end"),
        ("nan,2", "start and end"),
        ("0:1,2", "clip number"),
    ],
)
def test_malformed_clips_are_refused(text, match):
    with pytest.raises(AudioError, match=match):
        A.parse_clip(text)


def test_clips_outside_or_empty_or_naming_a_missing_clip_are_refused():
    clip = A.load_audio((tone(seconds=2.0), RATE), name="two")
    with pytest.raises(AudioError, match=r"outside the audio \(2.000 s\)"):
        clip.with_clip(A.Clip(1, 3))
    with pytest.raises(AudioError, match="outside"):
        clip.with_clip(A.Clip(-1, 1))
    with pytest.raises(AudioError, match="is empty"):
        clip.with_clip(A.Clip(1, 1))
    with pytest.raises(AudioError, match="names clip 2"):
        A.apply_clip([clip], A.Clip(0, 1, audio=1))
    with pytest.raises(AudioError, match="needs audio"):
        A.apply_clip([], A.Clip(0, 1))


def test_bad_inputs_are_clear_errors(tmp_path):
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 4)
    cases = [
        (lambda: A.load_audio(str(corrupt)), "Cannot read 'broken.wav'|Cannot read '.*broken.wav'"),
        (lambda: A.load_audio(b"not audio at all", name="blob"), "Cannot read blob as audio"),
        (lambda: A.load_audio(str(tmp_path)), "is a directory"),
        (lambda: A.load_audio({"a": 1}, name="d"), "d is a dict; audio must be"),
        (lambda: A.load_audio(np.zeros(10), name="raw"), "no sample rate"),
        (lambda: A.load_audio((np.zeros(0), RATE), name="e"), "e is empty"),
        (lambda: A.load_audio((np.zeros((3, 3, 3)), RATE), name="c"), "shape"),
        (lambda: A.load_audio((np.zeros((20, 20)), RATE), name="w"), "at most 8"),
        (lambda: A.load_audio((np.array(["a", "b"]), RATE), name="s"), "dtype"),
        (lambda: A.load_audio((np.array([0.0, np.nan]), RATE), name="n"), "NaN"),
        (lambda: A.load_audio((tone(), 10), name="r"), "between 1,000 and 384,000"),
        (lambda: A.load_audio((tone(), 16000.5), name="f"), "whole number"),
    ]
    for call, match in cases:
        with pytest.raises(AudioError, match=match) as caught:
            call()
        assert isinstance(caught.value, LmWidgetsError)
        assert "Traceback" not in str(caught.value)


def test_enormous_clips_are_refused_from_the_header_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "MAX_SECONDS", 2.0)
    path = tmp_path / "long.wav"
    path.write_bytes(encoded(tone(seconds=3.0)))
    with pytest.raises(AudioError, match=r"3.0 s long; lmwidgets takes clips of at most 2 s"):
        A.load_audio(str(path))
    with pytest.raises(AudioError, match="at most 2 s"):
        A.load_audio((tone(seconds=3.0), RATE))


def test_the_waveform_is_a_small_png_of_the_envelope():
    from PIL import Image

    url = A.load_audio((tone(), RATE)).waveform()
    assert url.startswith("data:image/png;base64,")
    data = base64.b64decode(url.split(",", 1)[1])
    assert len(data) < 1_500
    image = Image.open(io.BytesIO(data))
    assert image.size == A.WAVEFORM_SIZE
    quiet_then_loud = np.concatenate([np.zeros(RATE), tone()])
    envelope = Image.open(
        io.BytesIO(base64.b64decode(A.waveform_data_url(quiet_then_loud).split(",", 1)[1]))
    )
    drawn = np.asarray(envelope.convert("L")) > 0
    columns = drawn.sum(axis=0)
    assert columns[: A.WAVEFORM_SIZE[0] // 2 - 2].max() <= 1  # silence: the middle line only
    assert columns[A.WAVEFORM_SIZE[0] // 2 + 2 :].min() > A.WAVEFORM_SIZE[1] // 2  # the tone


def test_wav_bytes_and_the_served_content_part():
    from lmwidgets.engines.served.engine import wire_part

    clip = A.load_audio((tone(seconds=2.0, rate=22_050), 22_050)).with_clip(A.Clip(0.5, 1.5))
    part = wire_part(clip)
    assert part["type"] == "input_audio" and part["input_audio"]["format"] == "wav"
    with wave.open(io.BytesIO(base64.b64decode(part["input_audio"]["data"]))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 22_050)
        assert wav.getnframes() == 22_050  # the clipped second only
    assert A.wav_data_url(clip).startswith("data:audio/wav;base64,UklGR")


def test_importing_lmwidgets_media_audio_does_not_import_the_decoders():
    import subprocess
    import sys

    code = (
        "import sys, lmwidgets, lmwidgets.media.audio; "
        "print(sorted(m for m in ('soundfile', 'soxr', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_play_control_gets_the_audio_by_message_never_in_synced_state():
    from lmwidgets.notebook.widgets import PromptView

    widget = PromptView()
    sent = []
    widget.send = lambda content, buffers=None: sent.append(content)
    clip = A.load_audio((tone(), RATE), name="beep")
    picture = A.load_audio  # anything that is not an audio clip is skipped when counting
    widget.media_sources = [picture, clip]
    widget._on_message(widget, {"type": "audio", "index": 0}, [])
    assert sent[-1]["index"] == 0 and sent[-1]["src"].startswith("data:audio/wav;base64,")
    for index in (1, -1, "0", None, True):  # out of range, not an index
        widget._on_message(widget, {"type": "audio", "index": index}, [])
        assert sent[-1] == {"type": "audio", "index": index, "error": "audio unavailable"}
    state = json.dumps(widget.get_state(), default=str)
    assert "audio/wav" not in state and "UklGR" not in state  # no WAV in what a notebook saves


def test_urls_are_downloaded_and_refused_clearly(tmp_path):
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    (tmp_path / "tone.ogg").write_bytes(encoded(tone(), format="OGG"))
    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        clip = A.resolve_audio(f"{base}/tone.ogg")
        assert (clip.name, clip.source, clip.location) == ("tone.ogg", "url", f"{base}/tone.ogg")
        assert clip.duration == pytest.approx(1.0) and clip.bytes_sha256
        with pytest.raises(AudioError, match="Cannot download the audio"):
            A.resolve_audio(f"{base}/missing.wav")
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_a_released_clip_keeps_its_identity_and_previews():
    clip = A.load_audio((tone(seconds=2.0), RATE), name="item").with_clip(A.Clip(0, 1))
    record, preview, row = clip.record(), clip.widget_data(), clip.item_preview()
    clip.release()
    assert clip.released and clip.samples is None
    assert clip.record() == record and clip.widget_data() == preview
    assert clip.item_preview() == row and len(row["src"]) < len(preview["src"])
    assert (clip.channels, clip.duration) == (1, 2.0)
    with pytest.raises(AudioError, match="released"):
        clip.wav_bytes()
    fresh = A.load_audio((tone(seconds=2.0), RATE), name="item")
    assert fresh.restore({"clip": [0.5, 1.5]}).clip == A.Clip(0.5, 1.5)  # a re-run's --clip
    assert fresh.restore({}) is fresh
