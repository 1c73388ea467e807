"""Audio for audio-language prompts: reading clips from anywhere a notebook keeps them.

A clip may be a file path (WAV, FLAC, OGG, MP3), an ``http(s)`` URL, the bytes of such a file, an
``IPython.display.Audio``, a numpy array or torch tensor (mono ``(n,)`` or multi-channel, with
``--sample-rate``) or an ``(array, rate)`` tuple. Files are decoded with soundfile (libsndfile,
bundled in its wheel, MP3 included) and resampled with soxr to the rate the model's processor
wants; both are imported only when audio is used. Every clip keeps its decoded samples and what
identifies them (sha256 of the samples, and of the file bytes when there were any). The widget
gets a waveform picture (a PNG of a few hundred bytes), never the audio itself, so a saved
notebook holds no audio. ``--clip START,END`` asks about part of a clip.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, cast

from lmwidgets.errors import AudioError
from lmwidgets.media.base import (
    URL,
    MediaInput,
    MediaKind,
    check_location,
    download,
    hf_cell,
    numbered,
    read_file,
    register_kind,
    resolve,
    url_name,
)

#: Longest clip accepted (seconds, after ``--clip``): longer ones are refused before decoding.
MAX_SECONDS = 600.0
#: Largest audio file or download accepted, in bytes.
MAX_BYTES = 200_000_000
#: Most channels a clip may have (more is a mistaken array, e.g. samples x channels swapped).
MAX_CHANNELS = 8
#: Sample rates accepted for arrays and files (Hz).
MIN_RATE, MAX_RATE = 1_000, 384_000
#: Size of the waveform picture in pixels.
WAVEFORM_SIZE = (240, 40)
#: Size of a dataset row's waveform picture.
ROW_WAVEFORM_SIZE = (96, 20)
#: The waveform's colour: a mid blue readable on light and dark backgrounds.
WAVEFORM_COLOUR = (66, 133, 244)
#: What the file readers take; soundfile reads these (and more) from bytes.
FORMATS = "WAV, FLAC, OGG or MP3"


@dataclass(frozen=True)
class Clip:
    """Part of a clip in seconds (``end`` exclusive) and the clip's index in the prompt."""

    start: float
    end: float
    audio: int = 0

    def as_list(self) -> list[float]:
        """``[start, end]``."""
        return [self.start, self.end]


@dataclass
class AudioInput(MediaInput):
    """One clip of a prompt: decoded samples ``(channels, frames)`` float32 at ``rate`` Hz."""

    kind: ClassVar[str] = "audio"

    samples: Any  # numpy float32 array, (channels, frames)
    rate: int
    name: str
    source: str  # file | url | variable | value
    sha256: str
    bytes_sha256: str | None = None
    clip: Clip | None = None
    location: str | None = None
    _waveform: str | None = field(default=None, repr=False)
    _row_waveform: str | None = field(default=None, repr=False)
    _shape: tuple[int, int] = field(default=(0, 0), repr=False)

    @property
    def channels(self) -> int:
        """Number of channels of the decoded audio."""
        samples = self.samples  # read once: a batch may release it meanwhile (another thread)
        return int(samples.shape[0]) if samples is not None else self._shape[0]

    @property
    def duration(self) -> float:
        """Length of the whole decoded clip in seconds."""
        samples = self.samples  # read once (see channels)
        frames = int(samples.shape[1]) if samples is not None else self._shape[1]
        return frames / self.rate

    @property
    def released(self) -> bool:
        """Whether the samples were dropped (:meth:`release`)."""
        return self.samples is None

    def release(self) -> None:
        """Keep the identity and the waveforms, drop the samples (a dataset item after its
        batch)."""
        if self.samples is not None:
            self.waveform()
            self.item_preview()
            self._shape = (int(self.samples.shape[0]), int(self.samples.shape[1]))
            self.samples = None

    def restore(self, entry: Mapping[str, Any]) -> AudioInput:
        """The clip with the part its record names (``clip``) asked about again."""
        part = entry.get("clip")
        if not part:
            return self
        return self.with_clip(Clip(float(part[0]), float(part[1])))

    @property
    def heard_seconds(self) -> float:
        """Length of what the model hears (the ``--clip`` part, or everything)."""
        return self.clip.end - self.clip.start if self.clip else self.duration

    def heard(self) -> Any:
        """The samples the model hears: ``(channels, frames)`` of the ``--clip`` part (None once
        released)."""
        samples = self.samples  # read once (see channels)
        if self.clip is None or samples is None:
            return samples
        first = round(self.clip.start * self.rate)
        last = round(self.clip.end * self.rate)
        return samples[:, first:last]

    def model_audio(self, rate: int) -> Any:
        """What the model receives: the heard part mixed to mono float32, resampled to ``rate``."""
        import numpy as np

        heard = self.heard()
        if heard is None:
            raise AudioError(f"{self.name}'s samples were released after its batch; read it again.")
        return resample(heard.mean(axis=0, dtype=np.float32), self.rate, int(rate))

    def with_clip(self, clip: Clip | None) -> AudioInput:
        """A copy that asks about ``clip`` only (checked to lie inside the audio)."""
        if clip is not None:
            check_clip(clip, self.duration)
        return replace(self, clip=clip, _waveform=None, _row_waveform=None)

    def wav_bytes(self, rate: int | None = None) -> bytes:
        """The heard part as a 16-bit PCM WAV file (mono, at ``rate`` or the clip's own)."""
        import soundfile

        data = self.model_audio(rate or self.rate)
        buffer = io.BytesIO()
        soundfile.write(buffer, data, rate or self.rate, format="WAV", subtype="PCM_16")
        return buffer.getvalue()

    def waveform(self) -> str:
        """A ``data:image/png;base64,...`` URL of the heard part's waveform (computed once)."""
        heard = self.heard()
        if self._waveform is None and heard is not None:
            self._waveform = waveform_data_url(heard)
        return self._waveform or ""

    def record(self) -> dict[str, Any]:
        """What a run record says about the clip: enough to tell exactly which audio it was."""
        info = self.identity(
            rate=self.rate, channels=self.channels, duration=round(self.duration, 6)
        )
        if self.clip is not None:
            info["clip"] = self.clip.as_list()
        return info

    def caption(self) -> str:
        """``2.0 s`` (or ``1.5 s of 3.0 s, 0.5-2 s`` for a ``--clip``): what the model heard."""
        if self.clip is None:
            return f"{self.duration:.1f} s"
        return (
            f"{self.heard_seconds:.1f} s of {self.duration:.1f} s, "
            f"{self.clip.start:g}-{self.clip.end:g} s"
        )

    def widget_data(self) -> dict[str, Any]:
        """What the widget needs to show it: the waveform picture and the heard duration (no
        audio: the play control asks the kernel for it)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "src": self.waveform(),
            "caption": self.caption(),
            "duration": round(self.heard_seconds, 3),
            "clip": self.clip.as_list() if self.clip else None,
        }

    def item_preview(self) -> dict[str, Any]:
        """A dataset row's preview: a smaller waveform (kept once per row in the saved grid)."""
        heard = self.heard()
        if self._row_waveform is None and heard is not None:
            self._row_waveform = waveform_data_url(heard, ROW_WAVEFORM_SIZE)
        return {**self.widget_data(), "src": self._row_waveform or ""}


def samples_sha256(samples: Any, rate: int) -> str:
    """sha256 of decoded audio: its rate, shape and float32 samples (the same sound gives the
    same hash whether it came from a WAV file or an array)."""
    import numpy as np

    data = np.ascontiguousarray(samples, dtype=np.float32)
    digest = hashlib.sha256(f"{rate}:{data.shape[0]}x{data.shape[1]}:float32:".encode())
    digest.update(data.tobytes())
    return digest.hexdigest()


def resample(mono: Any, rate: int, target: int) -> Any:
    """``mono`` (float32) at ``target`` Hz: soxr's high-quality resampler, or as it is."""
    import numpy as np

    if rate == target or mono.size == 0:
        return np.ascontiguousarray(mono, dtype=np.float32)
    import soxr

    return np.ascontiguousarray(soxr.resample(mono, rate, target, quality="HQ"), dtype=np.float32)


def _check_length(frames: int, rate: int, label: str) -> None:
    if frames <= 0:
        raise AudioError(f"{label} is empty (no samples).")
    if frames / rate > MAX_SECONDS:
        raise AudioError(
            f"{label} is {frames / rate:,.1f} s long; lmwidgets takes clips of at most "
            f"{MAX_SECONDS:,.0f} s. Cut it first, or read part of it (soundfile.read(path, "
            "start=..., stop=...))."
        )


def _check_rate(rate: Any, label: str) -> int:
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate != int(rate):
        raise AudioError(f"The sample rate of {label} must be a whole number of Hz, not {rate!r}.")
    if not MIN_RATE <= int(rate) <= MAX_RATE:
        raise AudioError(
            f"The sample rate of {label} is {int(rate):,} Hz; give one between {MIN_RATE:,} and "
            f"{MAX_RATE:,} Hz (e.g. --sample-rate 16000)."
        )
    return int(rate)


def _decode(data: bytes, label: str) -> tuple[Any, int]:
    """(samples ``(channels, frames)`` float32, rate) of an encoded audio file."""
    _require_audio_libraries()
    import numpy as np
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            rate, frames = int(handle.samplerate), int(handle.frames)
            _check_length(frames, rate, label)
            decoded = handle.read(dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        reason = re.sub(r"^Error opening .*?: ", "", reason)[:200].rstrip(".")
        raise AudioError(
            f"Cannot read {label} as audio ({reason}). Give a {FORMATS} file."
        ) from None
    _check_length(int(decoded.shape[0]), rate, label)  # the header may overstate the frames
    samples = np.ascontiguousarray(decoded.T)
    _check_finite(samples, label)
    return samples, _check_rate(rate, label)


def _check_finite(samples: Any, label: str) -> None:
    import numpy as np

    if not np.isfinite(samples).all():
        raise AudioError(f"{label} holds NaN or infinite samples.")


def _from_array(value: Any, rate: Any, label: str) -> tuple[Any, int]:
    """(samples ``(channels, frames)`` float32, rate) of an array or tensor: ``(n,)`` mono, or
    2-D with the shorter side as channels (either orientation)."""
    import numpy as np

    if rate is None:
        raise AudioError(
            f"{label} is an array with no sample rate: add --sample-rate HZ (e.g. 16000), or pass "
            "an (array, rate) tuple."
        )
    rate = _check_rate(rate, label)
    if type(value).__module__.startswith("torch"):
        value = value.detach().to("cpu").float().numpy()
    array = np.asarray(value)
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2 and array.shape[0] > array.shape[1]:
        array = array.T  # (frames, channels), as soundfile reads
    if array.ndim != 2 or array.shape[0] > MAX_CHANNELS:
        raise AudioError(
            f"{label} has shape {tuple(np.shape(value))}; an audio array must be (samples,) for "
            f"mono or (channels, samples) / (samples, channels) with at most {MAX_CHANNELS} "
            "channels."
        )
    _check_length(int(array.shape[1]), rate, label)
    if np.issubdtype(array.dtype, np.integer):
        scale = float(np.iinfo(array.dtype).max) + 1.0
        array = array.astype(np.float32) / scale
    elif not np.issubdtype(array.dtype, np.floating):
        raise AudioError(
            f"{label} has dtype {array.dtype}; audio arrays must be float (in [-1, 1]) or integer "
            "PCM."
        )
    samples = np.ascontiguousarray(array, dtype=np.float32)
    _check_finite(samples, label)
    return samples, rate


def _require_audio_libraries() -> None:
    import importlib.util

    missing = [name for name in ("soundfile", "soxr") if importlib.util.find_spec(name) is None]
    if missing:
        raise AudioError(
            f"Audio needs the {' and '.join(missing)} package(s): `pip install soundfile soxr`, "
            "then run the cell again."
        )


def _download(url: str) -> bytes:
    return download(url, MAX_BYTES, AudioError, "the audio", "save the file and give its path")


def _encoded(data: bytes, name: str, source: str, location: str | None) -> AudioInput:
    samples, rate = _decode(data, repr(location) if location else name)
    return AudioInput(
        samples,
        rate,
        name=name,
        source=source,
        sha256=samples_sha256(samples, rate),
        bytes_sha256=hashlib.sha256(data).hexdigest(),
        location=location,
    )


def _from_ipython(value: Any, sample_rate: int | None, label: str) -> AudioInput:
    """An ``IPython.display.Audio``: its file bytes (it keeps WAV-encoded data) or its URL."""
    data = getattr(value, "data", None)
    if isinstance(data, (bytes, bytearray)) and data:
        return _encoded(bytes(data), label, "variable", None)
    url = getattr(value, "url", None) or getattr(value, "filename", None)
    if isinstance(url, str) and url:
        return load_audio(url, sample_rate=sample_rate)
    raise AudioError(f"The IPython Audio {label} holds no audio data.")


def load_audio(
    value: Any, name: str | None = None, *, sample_rate: int | None = None
) -> AudioInput:
    """Read one clip from a path, URL, file bytes, IPython Audio, array/tensor or (array, rate)."""
    if isinstance(value, AudioInput):
        return value
    value = hf_cell(value)  # a Hugging Face dataset's cell
    label = name or "the audio"
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and URL.match(text):
            data = _download(text)
            return _encoded(data, url_name(text), "url", text)
        path = Path(os.path.expanduser(text))
        data = read_file(path, name or str(text), AudioError, "audio", MAX_BYTES)
        return _encoded(data, path.name, "file", str(path))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _encoded(bytes(value), label, "variable", None)
    module = type(value).__module__ or ""
    if module.startswith("IPython.") and type(value).__name__ == "Audio":
        return _from_ipython(value, sample_rate, label)
    if isinstance(value, tuple) and len(value) == 2 and _is_array(value[0]):
        samples, rate = _from_array(value[0], value[1], label)
    elif _is_array(value):
        samples, rate = _from_array(value, sample_rate, label)
    else:
        raise AudioError(
            f"{label} is a {type(value).__name__}; audio must be a file path ({FORMATS}), an "
            "http(s) URL, the bytes of an audio file, an IPython.display.Audio, a numpy array or "
            "torch tensor (with --sample-rate), or an (array, rate) tuple."
        )
    return AudioInput(samples, rate, label, "variable", samples_sha256(samples, rate))


def _is_array(value: Any) -> bool:
    module = type(value).__module__ or ""
    return (
        hasattr(value, "__array_interface__")
        or module.startswith("numpy")
        or (module.startswith("torch") and hasattr(value, "detach"))
    )


def resolve_audio(
    spec: Any,
    namespace: Mapping[str, Any] | None = None,
    name: str | None = None,
    *,
    sample_rate: int | None = None,
) -> AudioInput:
    """``--audio SPEC``: a notebook variable's value when ``SPEC`` names one, else a path or URL,
    else an audio value (called ``name``)."""
    return cast(AudioInput, resolve(AUDIO, spec, namespace, name or "", sample_rate=sample_rate))


def check_value(value: Any, label: str) -> None:
    """A cheap check of a dataset's audio before anything runs: a kind of value
    :func:`load_audio` reads, and for a path, an existing file (decoded only when its batch
    runs). Arrays need a rate: datasets give ``(array, rate)`` tuples."""
    if isinstance(value, AudioInput):
        return
    value = hf_cell(value)
    if check_location(value, label, AudioError, "audio"):
        return
    module = type(value).__module__ or ""
    readable = (
        isinstance(value, (bytes, bytearray, memoryview))
        or (module.startswith("IPython.") and type(value).__name__ == "Audio")
        or (isinstance(value, tuple) and len(value) == 2 and _is_array(value[0]))
    )
    if _is_array(value):
        raise AudioError(
            f"{label} is an array without a sample rate; give (array, rate) tuples in the dataset."
        )
    if not readable:
        raise AudioError(
            f"{label} is a {type(value).__name__}; audio must be a file path ({FORMATS}), an "
            "http(s) URL, the bytes of an audio file, an IPython.display.Audio or an "
            "(array, rate) tuple."
        )


def parse_clip(text: str) -> Clip:
    """``"START,END"`` seconds (or ``"N:START,END"`` for the N-th clip, from 1) as a :class:`Clip`."""
    audio, raw = numbered(text, "--clip", "clip", AudioError)
    parts = [p.strip() for p in raw.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 2 or not all(abs(n) < float("inf") for n in numbers):
        raise AudioError(
            f"--clip {text!r}: give the start and end in seconds, e.g. --clip 1.5,4 (or "
            "--clip 2:1.5,4 for the second clip)."
        )
    return Clip(numbers[0], numbers[1], audio=audio)


def check_clip(clip: Clip, duration: float) -> None:
    """Raise :class:`AudioError` unless ``clip`` is a non-empty part inside ``duration`` seconds."""
    if not clip.start < clip.end:
        raise AudioError(
            f"--clip {clip.start:g},{clip.end:g} is empty: the start must come before the end."
        )
    if clip.start < 0 or clip.end > duration + 1e-6:
        raise AudioError(
            f"--clip {clip.start:g},{clip.end:g} lies outside the audio ({duration:.3f} s): "
            f"keep 0 <= start < end <= {duration:.3f}."
        )


def apply_clip(clips: list[AudioInput], clip: Clip | None) -> list[AudioInput]:
    """The clips with ``clip`` applied to the one it names (checked against its length)."""
    if clip is None:
        return list(clips)
    if not clips:
        raise AudioError(
            "--clip needs audio: add --audio X (the clip is in its seconds). A dataset's own "
            "clips (its audio column) are not cut by --clip: put the part you want in the "
            "dataset, e.g. an (array[start:end], rate) tuple."
        )
    if clip.audio >= len(clips):
        raise AudioError(
            f"--clip names clip {clip.audio + 1}, but the prompt has {len(clips)} audio clip(s)."
        )
    cut = list(clips)
    cut[clip.audio] = clips[clip.audio].with_clip(clip)
    return cut


def waveform_data_url(samples: Any, size: tuple[int, int] = WAVEFORM_SIZE) -> str:
    """A PNG data URL of ``samples``' waveform: per pixel column, the min/max envelope of the
    (mono-mixed) samples it covers, on a transparent background (a few hundred bytes)."""
    import numpy as np
    from PIL import Image, ImageDraw

    width, height = size
    mono = np.asarray(samples, dtype=np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    image = Image.new("P", size, 0)
    image.putpalette([0, 0, 0, *WAVEFORM_COLOUR] + [0] * 762)
    draw = ImageDraw.Draw(image)
    middle = (height - 1) / 2
    draw.line((0, round(middle), width - 1, round(middle)), fill=1)
    if mono.size:
        edges = np.linspace(0, mono.size, width + 1).astype(int)
        peak = max(float(np.abs(mono).max()), 1e-9)
        for x in range(width):
            chunk = mono[edges[x] : max(edges[x + 1], edges[x] + 1)]
            low, high = float(chunk.min()) / peak, float(chunk.max()) / peak
            draw.line((x, round(middle - high * middle), x, round(middle - low * middle)), fill=1)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True, transparency=0, bits=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def wav_data_url(item: AudioInput) -> str:
    """A ``data:audio/wav;base64,...`` URL of what the clip's listener hears (for the play
    control while the kernel runs; never saved in the notebook)."""
    return "data:audio/wav;base64," + base64.b64encode(item.wav_bytes()).decode("ascii")


def apply_clip_option(media: list[Any], options: Any) -> list[Any]:
    """``--clip`` applied to the prompt's audio clip it names (its index among the clips);
    other kinds pass through."""
    clip = getattr(options, "clip", None)
    if clip is None:
        return list(media)
    clip = parse_clip(clip) if isinstance(clip, str) else clip
    places = [i for i, item in enumerate(media) if item.kind == "audio"]
    cut = apply_clip([media[i] for i in places], clip)
    result = list(media)
    for place, item in zip(places, cut, strict=True):
        result[place] = item
    return result


def reload_audio(value: Any, entry: Mapping[str, Any], name: str) -> AudioInput:
    """A recorded clip read again for a re-run: an array with the recorded rate (it carries
    none), anything else as :func:`load_audio` reads it."""
    rate = entry.get("rate") if _is_array(value) else None
    return load_audio(value, name=name, sample_rate=rate if isinstance(rate, int) else None)


def _audio_line(preview: Mapping[str, Any]) -> str:
    """``'speech.wav (2.0 s)'`` (with the part asked about for a ``--clip``)."""
    return f"{preview.get('name', 'audio')} ({preview.get('caption', '')})"


AUDIO = register_kind(
    MediaKind(
        name="audio",
        load=load_audio,
        option="--audio",
        help=(
            "An audio clip for an audio-language model (repeat for several): a notebook "
            "variable (numpy array or torch tensor with --sample-rate, (array, rate) tuple, "
            "IPython Audio, file bytes), a WAV/FLAC/OGG/MP3 file path or an http(s) URL. "
            "{audio} in the prompt places each clip; otherwise they go before the text."
        ),
        plural="audio",
        placeholder="{audio}",
        error=AudioError,
        hint=(
            "Load one, e.g. `%lm load Qwen/Qwen2-Audio-7B-Instruct --as alm`, and pass "
            "`--model alm`."
        ),
        check=check_value,
        line=_audio_line,
        load_options=("sample_rate",),
        apply=apply_clip_option,
        reload=reload_audio,
    )
)
