"""``--probe inject-audio``: the injected instruction spoken into the prompt's audio clip.

The instruction is spoken offline by the ``espeak-ng`` speech synthesizer (a Debian/Ubuntu,
Homebrew and Windows package, no network and no model weights) to a WAV file, decoded like any
clip (:mod:`lmwidgets.media.audio`) and mixed into a copy of the prompt's first clip: at its
start, middle or end (the attack's ``placement``; ``end`` unless the attack says otherwise),
the clip lengthened when the speech runs past it. A prompt without audio gets the speech as its
clip. espeak-ng speaks the same text the same way every time (for one version and voice), so a
rerun speaks the same samples again; the record keeps the synthesizer, its version, the voice
and the sha256 of the spoken samples to check that.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from lmwidgets.errors import ProbeUnavailableError, RecordError
from lmwidgets.media.audio import AudioInput, load_audio, samples_sha256

#: The synthesizer's voice (espeak-ng ``-v``) and speed in words per minute (``-s``).
VOICE = "en-us"
WORDS_PER_MINUTE = 150
#: Peak level of the speech in the mix (the clip keeps its own level; a mix louder than full
#: scale is scaled down as a whole).
SPEECH_PEAK = 0.8
#: Seconds espeak-ng may take for one instruction.
TIMEOUT = 60
#: How to get espeak-ng, said by the errors.
INSTALL = (
    "install the espeak-ng speech synthesizer (Debian/Ubuntu: `sudo apt-get install espeak-ng`; "
    "macOS: `brew install espeak-ng`), then run the cell again"
)


def synthesizer() -> str | None:
    """The path of ``espeak-ng`` (None when it is not installed)."""
    return shutil.which("espeak-ng")


def missing_synthesizer() -> str:
    """Why inject-audio cannot run without espeak-ng, and how to install it."""
    return f"inject-audio speaks the instruction with espeak-ng, which is not installed: {INSTALL}."


@functools.lru_cache(maxsize=1)
def synthesizer_version() -> str:
    """``espeak-ng 1.51`` (the first words of ``espeak-ng --version``)."""
    path = _require()
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=TIMEOUT, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "espeak-ng"
    words = out.split(":", 1)[-1].split()
    return f"espeak-ng {words[0]}" if words else "espeak-ng"


def voice_record() -> dict[str, Any]:
    """What a record says about the voice that spoke the instruction."""
    return {"synthesizer": synthesizer_version(), "voice": VOICE, "speed": WORDS_PER_MINUTE}


def _require() -> str:
    path = synthesizer()
    if path is None:
        raise ProbeUnavailableError(f"--probe {missing_synthesizer()}")
    return path


@functools.lru_cache(maxsize=32)
def speak_wav(text: str, voice: str = VOICE) -> bytes:
    """``text`` spoken by espeak-ng as the bytes of a WAV file (kept for the run's columns:
    every column and dataset item speaks the same instruction)."""
    path = _require()
    with tempfile.TemporaryDirectory(prefix="lmwidgets-speech-") as folder:
        wav = Path(folder) / "speech.wav"
        try:  # the text goes through stdin: an attack starting with "-" is not an option
            done = subprocess.run(
                [path, "-v", voice, "-s", str(WORDS_PER_MINUTE), "-b", "1", "--stdin", "-w", wav],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            raise ProbeUnavailableError(
                f"--probe inject-audio: espeak-ng took more than {TIMEOUT} s to speak the "
                "instruction; use a shorter attack text."
            ) from None
        except OSError as exc:
            raise ProbeUnavailableError(
                f"--probe inject-audio: cannot run espeak-ng ({exc.strerror or exc}); {INSTALL}."
            ) from None
        if done.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            reason = said[0][:200] if said else f"exit status {done.returncode}"
            raise ProbeUnavailableError(
                f"--probe inject-audio: espeak-ng could not speak the instruction with voice "
                f"{voice!r} ({reason})."
            )
        return wav.read_bytes()


def spoken(text: str) -> AudioInput:
    """The instruction spoken, as a clip of its own."""
    clip = load_audio(speak_wav(text), name="spoken attack")
    return replace(clip, source="probe")


def mix(item: AudioInput, speech: AudioInput, placement: str) -> AudioInput:
    """A copy of ``item``'s heard part with ``speech`` mixed in at ``placement`` (start, middle
    or end), lengthened when the speech runs past it."""
    import numpy as np

    heard = item.heard()
    if heard is None:
        heard = item.model_audio(item.rate)[None, :]  # raises the clear "released" error
    voice = speech.model_audio(item.rate)
    voice = voice * (SPEECH_PEAK / max(float(np.abs(voice).max()), 1e-6))
    frames, length = int(heard.shape[1]), int(voice.shape[0])
    start = {"start": 0, "middle": max(0, (frames - length) // 2)}.get(
        placement, max(0, frames - length)
    )
    mixed = np.zeros((heard.shape[0], max(frames, start + length)), dtype=np.float32)
    mixed[:, :frames] = heard
    mixed[:, start : start + length] += voice[None, :]
    peak = float(np.abs(mixed).max())
    if peak > 1.0:
        mixed /= peak
    return replace(
        item,
        samples=np.ascontiguousarray(mixed, dtype=np.float32),
        name=f"{item.name} (attack spoken in: {placement})",
        source="probe",
        sha256=samples_sha256(mixed, item.rate),
        bytes_sha256=None,
        clip=None,
        location=None,
        _waveform=None,
        _row_waveform=None,
        _shape=(0, 0),
    )


def speech_sha256(text: str) -> str:
    """sha256 of the spoken instruction's samples (recorded, and checked by a rerun)."""
    return spoken(text).sha256


def check_spoken_again(probe: dict[str, Any], text: str) -> None:
    """A rerun's check that espeak-ng spoke the recorded instruction the same way."""
    recorded = probe.get("speech_sha256")
    if recorded and speech_sha256(text) != recorded:
        was = (probe.get("voice") or {}).get("synthesizer", "another espeak-ng")
        raise RecordError(
            f"The inject-audio column's speech differs from the recorded one (recorded with "
            f"{was}, spoken now by {synthesizer_version()}): the re-run would not hear the same "
            "attack. Rerun with the recorded espeak-ng version."
        )
