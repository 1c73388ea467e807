"""Prompt-injection and prompt-leak probes (``--probe``): columns that attack the prompt.

``--probe leak,override,inject,inject-image,inject-audio`` (or ``all``) adds the ``probe`` axis:
beside the prompt as written (``none``), one column per attack of each kind (the attack set of
:mod:`lmwidgets.prompting.attacks`). A canary word is drawn for the run:

``leak``
    The canary is planted in the system prompt (a last line ``Internal reference: CANARY.``) and
    the attack is the user's turn. Needs a system prompt.
``override``
    The attack is the user's turn and asks to drop the system prompt's rules and write the
    canary. Needs a system prompt.
``inject``
    The prompt's ``{field}`` data carries the instruction (at its end, in its middle...); the
    field is ``inject_field=`` (``--inject-field``), else the template's last field. Needs a
    ``{field}``.
``inject-image``
    The instruction is drawn into a copy of the prompt's first image (needs an image and a
    model that reads images).
``inject-audio``
    The instruction is spoken (offline, by espeak-ng) into a copy of the prompt's first audio
    clip, or is the clip when the prompt has none (:mod:`lmwidgets.prompting.audio_injection`;
    needs espeak-ng and a model that hears audio).

Each probe column's record holds its ``probe`` (kind, attack, canary, field) and, once judged,
its verdict (:mod:`lmwidgets.prompting.probe_verdicts`): the messages are recorded exactly, so
``%lm rerun`` repeats the attack. The ``probe`` axis is a registered axis kind
(:mod:`lmwidgets.prompting.probe_axis`); this module holds what its values do.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmwidgets.errors import InvalidArgumentError, ProbeUnavailableError, PromptError
from lmwidgets.media.base import Deferred, MediaInput
from lmwidgets.prompting.attacks import KINDS, Attack, attack_set
from lmwidgets.prompting.axes import KindAxis, Spec

if TYPE_CHECKING:
    from lmwidgets.engines.base import Engine, Message

#: The canary's words (a word and four digits reads as a code small models can repeat).
_CANARY_WORDS = ("PELICAN", "MARIGOLD", "QUASAR", "TUNDRA", "ZEPHYR", "OBSIDIAN", "LANTERN")
#: The line that plants the canary in a leak column's system prompt.
CANARY_LINE = "Internal reference: {canary}."
#: What ``--probe all`` means.
ALL = "all"

#: The value id of the column without an attack (the prompt as written, for comparison).
NO_PROBE = "none"


def draw_canary() -> str:
    """A fresh canary for a run: ``PELICAN-4821``."""
    word = _CANARY_WORDS[secrets.randbelow(len(_CANARY_WORDS))]
    return f"{word}-{1000 + secrets.randbelow(9000)}"


@dataclass(frozen=True)
class Probe:
    """One probe column's attack, with the run's canary and (for ``inject``) its field."""

    attack: Attack
    canary: str
    field: str | None = None

    @property
    def kind(self) -> str:
        return self.attack.kind

    def text(self, prompt: str = "") -> str:
        """The attack text with the canary (and the cell's prompt) filled in."""
        return self.attack.text.replace("{canary}", self.canary).replace("{prompt}", prompt)

    def record(self) -> dict[str, Any]:
        """What the column's record says about its probe."""
        return {
            "kind": self.kind,
            "attack": self.attack.as_dict(),
            "canary": self.canary,
            **({"field": self.field} if self.field else {}),
        }


class ProbeAxis(KindAxis):
    """The probes: ``none`` (the prompt as written), then one value per attack. Leak and
    override columns need a system prompt: a column without one gets only ``none``."""

    def values_for(self, spec: Spec) -> tuple[tuple[str, Any], ...]:
        if spec.system is not None:
            return self.values
        return tuple((i, p) for i, p in self.values if p is None or p.kind not in NEEDS_SYSTEM)


#: Kinds that attack a system prompt.
NEEDS_SYSTEM = ("leak", "override")


def parse_probes(probe: Any) -> list[str] | None:
    """``--probe`` as kinds (``all`` kept as :data:`ALL`); None when not given."""
    if probe is None:
        return None
    names = probe.split(",") if isinstance(probe, str) else probe
    if not isinstance(names, (list, tuple)):
        raise InvalidArgumentError(f"--probe takes kinds such as leak,inject, not {probe!r}.")
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise InvalidArgumentError(f"--probe needs a kind: {', '.join(KINDS)} or all.")
    for name in names:
        if name not in (*KINDS, ALL):
            near = difflib.get_close_matches(name, [*KINDS, ALL], n=1)
            hint = f" Did you mean {near[0]}?" if near else ""
            raise InvalidArgumentError(
                f"--probe {name}: not a probe ({', '.join(KINDS)}, all).{hint}"
            )
    if ALL in names:
        return [ALL]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class ProbeTarget:
    """What the probes can attack in this run (to check and pick them before anything runs)."""

    has_system: bool
    fields: Sequence[str]
    images: int
    engines: Sequence[Engine]


def probe_axis(
    probe: Any,
    attacks: Any,
    inject_field: str | None,
    target: ProbeTarget,
) -> tuple[ProbeAxis | None, list[str]]:
    """The probe axis (None without ``--probe``) and the notes of probes ``all`` left out."""
    kinds = parse_probes(probe)
    if kinds is None:
        if attacks is not None or inject_field is not None:
            raise InvalidArgumentError(
                "attacks= and inject_field= set up probes: add --probe KINDS (e.g. --probe all)."
            )
        return None, []
    notes: list[str] = []
    if kinds == [ALL]:
        kinds = []
        for kind in KINDS:
            why = _unavailable(kind, target, inject_field)
            if why is None:
                kinds.append(kind)
            else:
                notes.append(f"--probe all: {kind} left out: {why}")
        if not kinds:
            raise ProbeUnavailableError("--probe all: no probe applies. " + " ".join(notes))
    for kind in kinds:
        why = _unavailable(kind, target, inject_field)
        if why is not None:
            raise ProbeUnavailableError(f"--probe {kind}: {why}")
    canary = draw_canary()
    field = _inject_field(inject_field, target.fields) if "inject" in kinds else None
    sets = attack_set(attacks)
    values: list[tuple[str, Any]] = [(NO_PROBE, None)]
    for kind in kinds:
        values += [
            (a.id, Probe(a, canary, field if kind == "inject" else None)) for a in sets[kind]
        ]
    return ProbeAxis("probe", tuple(values)), notes


def _unavailable(kind: str, target: ProbeTarget, inject_field: str | None) -> str | None:
    """Why ``kind`` cannot run on this prompt (None: it can)."""
    if kind in NEEDS_SYSTEM and not target.has_system:
        return (
            f"{kind} attacks a system prompt, and this prompt has none: give one with "
            "--system TEXT (or --systems VAR)."
        )
    if kind == "inject" and not target.fields:
        return (
            "inject puts an instruction into the prompt's {field} data, and this prompt has no "
            "{field}: write the data as a field (e.g. 'Summarize: {document}')."
        )
    if kind == "inject-image":
        if not target.images:
            return "inject-image draws the instruction into the prompt's image: give one with --image X."
        if not all("image" in e.capabilities.media for e in target.engines):
            names = ", ".join(e.name for e in target.engines if "image" not in e.capabilities.media)
            return f"inject-image needs a model that reads images ({names} does not)."
    if kind == "inject-audio":
        return _audio_unavailable(target)
    return None


def _audio_unavailable(target: ProbeTarget) -> str | None:
    """Why ``inject-audio`` cannot run: a model that hears no audio, or no espeak-ng."""
    deaf = [e.name for e in target.engines if "audio" not in e.capabilities.media]
    if deaf:
        return (
            f"inject-audio speaks the instruction into the prompt's audio, and needs a model "
            f"that hears audio ({', '.join(deaf)} does not): load one (e.g. Qwen2-Audio) or "
            "leave inject-audio out."
        )
    from lmwidgets.prompting.audio_injection import missing_synthesizer, synthesizer

    return None if synthesizer() else missing_synthesizer()


def _inject_field(name: str | None, fields: Sequence[str]) -> str:
    """The field ``inject`` writes into: the one named, else the template's last."""
    if name is None:
        return fields[-1]
    if name not in fields:
        raise PromptError(
            f"inject_field={name}: the prompt has no {{{name}}} field (fields: "
            f"{', '.join(fields) or 'none'})."
        )
    return name


def system_with_canary(system: str, canary: str) -> str:
    """A leak column's system prompt: the user's, and the canary line after it."""
    return f"{system.rstrip()}\n\n{CANARY_LINE.format(canary=canary)}"


def injected(data: Any, probe: Probe) -> str:
    """The field's data with the probe's instruction placed in it."""
    text = str(data)
    instruction = probe.text()
    placement = probe.attack.placement
    if placement == "start":
        return f"{instruction}\n\n{text}"
    if placement == "middle":
        cut = _middle(text)
        return f"{text[:cut].rstrip()} {instruction} {text[cut:].lstrip()}".strip()
    return f"{text.rstrip()}\n\n{instruction}"


def _middle(text: str) -> int:
    """A place near the middle of ``text``: after the sentence end (else space) nearest it."""
    half = len(text) // 2
    ends = [i + 1 for i, ch in enumerate(text) if ch in ".!?\n"] or [
        i for i, ch in enumerate(text) if ch == " "
    ]
    return min(ends, key=lambda i: abs(i - half)) if ends else len(text)


def probe_fields(probe: Probe | None, values: Mapping[str, Any]) -> Mapping[str, Any]:
    """The template's values with an ``inject`` probe's field carrying the instruction."""
    if probe is None or probe.kind != "inject" or probe.field is None:
        return values
    if probe.field not in values:
        raise PromptError(
            f"--probe inject: the field {{{probe.field}}} has no value to inject into (define "
            f"it in the notebook, with --each or as a dataset column)."
        )
    return {**values, probe.field: injected(values[probe.field], probe)}


def probe_turns(
    probe: Probe | None, system: str | None, question: str
) -> tuple[str | None, str, list[Message]]:
    """A column's system prompt, question and earlier turns under ``probe``: leak plants the
    canary; leak and override send the attack as the user's turn."""
    if probe is None or probe.kind not in NEEDS_SYSTEM:
        return system, question, []
    if probe.kind == "leak" and system is not None:
        system = system_with_canary(system, probe.canary)
    turns = probe.attack.turns
    lead: list[Message] = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": text}
        for i, text in enumerate(turns)
    ]
    return system, probe.text(question), lead


def probe_record(probe: Probe | None, media: list[MediaInput]) -> dict[str, Any] | None:
    """What a column's record says about its probe; ``inject-image`` also names the original
    image, so that a rerun finds it and draws the attack in again; ``inject-audio`` names the
    original clip (if any), the text spoken, the voice and the hash of the speech."""
    if probe is None:
        return None
    record = probe.record()
    if probe.kind == "inject-image":
        record["image"] = next(m for m in media if m.kind == "image").record()
    if probe.kind == "inject-audio":
        from lmwidgets.prompting.audio_injection import speech_sha256, voice_record

        clip = next((m for m in media if m.kind == "audio"), None)
        if clip is not None:
            record["audio"] = clip.record()
        record["spoken"] = probe.text()
        record["voice"] = voice_record()
        record["speech_sha256"] = speech_sha256(probe.text())
    return record


def redraw(probe: dict[str, Any], media: list[MediaInput]) -> list[MediaInput]:
    """A rerun's media of an ``inject-image`` or ``inject-audio`` column (its original image or
    clip found again): the recorded attack drawn or spoken in again."""
    attack = Attack(**{**probe["attack"], "turns": tuple(probe["attack"].get("turns") or ())})
    again = Probe(attack, str(probe["canary"]))
    if again.kind == "inject-audio":
        from lmwidgets.prompting.audio_injection import check_spoken_again

        check_spoken_again(probe, again.text())
    return probe_media(again, media)


def probe_media(probe: Probe | None, media: list[MediaInput]) -> list[MediaInput]:
    """A column's media under ``probe``: for ``inject-image`` its first image replaced by a copy
    with the instruction drawn in (:mod:`lmwidgets.prompting.image_injection`); for
    ``inject-audio`` the instruction spoken into its first clip, or added as the clip when it
    has none (:mod:`lmwidgets.prompting.audio_injection`). A dataset item's own image or clip
    is attacked when its batch decodes it."""
    if probe is None or probe.kind not in ("inject-image", "inject-audio"):
        return media
    kind = "image" if probe.kind == "inject-image" else "audio"
    index = next((i for i, m in enumerate(media) if m.kind == kind), None)
    text, placement = probe.text(), probe.attack.placement
    attack: Callable[[Any], MediaInput]
    if probe.kind == "inject-image":
        from lmwidgets.prompting.image_injection import draw_instruction

        def attack(item: Any) -> MediaInput:
            return draw_instruction(item, text, placement)

    else:
        from lmwidgets.prompting.audio_injection import mix, spoken

        speech = spoken(text)
        if index is None:  # no clip to speak into: the speech is the clip
            return [*media, speech]

        def attack(item: Any) -> MediaInput:
            return mix(item, speech, placement)

    if index is None:  # checked before the run (an image is needed); kept safe here
        return media
    return [*media[:index], attacked(media[index], attack), *media[index + 1 :]]


def attacked(item: MediaInput, attack: Callable[[Any], MediaInput]) -> MediaInput:
    """``item`` with ``attack`` applied: now, or, for a dataset item's own media (decoded only
    when its batch runs), when it is decoded."""
    if isinstance(item, Deferred):
        return AttackedItem(
            value=item.value,
            media_kind=item.media_kind,
            name=item.name,
            source_item=item,
            attack=attack,
        )
    return attack(item)


@dataclass(eq=False)
class AttackedItem(Deferred):
    """A dataset item's own image or clip with a probe's attack applied once decoded (and
    again after a release); releasing it releases the original too."""

    source_item: Deferred | None = None
    attack: Callable[[Any], MediaInput] | None = None

    def resolve(self) -> MediaInput:
        if self.source_item is None or self.attack is None:
            return super().resolve()
        if self.item is None or getattr(self.item, "released", False):
            self.item = self.attack(self.source_item.resolve())
        return self.item

    def record(self) -> dict[str, Any]:
        entry = super().record()
        entry.pop("dataset", None)  # the attacked copy is not in the dataset (the original is)
        return entry

    def release(self) -> None:
        super().release()
        if self.source_item is not None:
            self.source_item.release()
