"""The ``probe`` axis kind: prompt-injection and prompt-leak probes (``--probe``) as one
registered axis kind (:mod:`lmwidgets.core.axis_kinds`).

What the probes are and what each attack does to a column: :mod:`.probes`; their verdicts:
:mod:`.probe_verdicts`. Here is what the rest of lmwidgets needs to know about them: the
``--probe``, ``--attacks`` and ``--inject-field`` options, the axis (``none`` and one value per
attack), the record's ``probe`` entry and how a re-run restores it (an ``inject-image``
column's picture drawn again, the verdicts judged again), the ``to_pandas()`` columns, the
live view's verdict (``probe`` in the cell) and the static copy's verdict pill and line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lmwidgets.core.axis_kinds import AxisContext, AxisKind, AxisRun, register_kind
from lmwidgets.errors import InvalidArgumentError, ProbeUnavailableError
from lmwidgets.prompting.probes import (
    NO_PROBE,
    ProbeTarget,
    probe_axis,
    probe_fields,
    probe_media,
    probe_record,
    probe_turns,
    redraw,
)
from lmwidgets.prompting.variations import template_fields

#: What the probes' finisher adds to a record's ``probe`` (a rerun judges again).
VERDICT_KEYS = ("verdict", "evidence")


class ProbeRun(AxisRun):
    """A run's probes: each column's attack planted in its fields, turns or image."""

    def __init__(self, axis: Any, notes: list[str]) -> None:
        self.axis = axis
        self.notes = notes

    def fill(self, value: Any, fields: Mapping[str, Any]) -> Mapping[str, Any]:
        return probe_fields(value, fields)

    def turns(
        self, value: Any, system: str | None, question: str
    ) -> tuple[str | None, str, list[dict[str, Any]]]:
        system, question, lead = probe_turns(value, system, question)
        return system, question, [dict(turn) for turn in lead]

    def media(self, value: Any, media: list[Any]) -> list[Any]:
        return probe_media(value, media)

    def variant(self, value: Any, strategy: str, media: list[Any]) -> dict[str, Any]:
        record = probe_record(value, media)
        return {} if record is None else {"recorded": {"probe": record}}

    def finishers(self) -> list[Callable[[Any], None]]:
        from lmwidgets.prompting.probe_verdicts import judge_comparison

        return [*map(_note, self.notes), judge_comparison]


def _note(text: str) -> Callable[[Any], None]:
    def add(comparison: Any) -> None:
        if text not in comparison.notes:
            comparison.notes.append(text)

    return add


def build(context: AxisContext) -> ProbeRun | None:
    """The probe axis (None without ``--probe``), checked against what the prompt has."""
    options = context.options
    systems = [a for a in context.axes if a.name == "system"]
    has_system = context.system is not None or any(
        v is not None for a in systems for _, v in a.values
    )
    fields = list(dict.fromkeys(f for _, text in context.wordings for f in template_fields(text)))
    images = sum(m.kind == "image" for m in context.media)
    target = ProbeTarget(has_system, fields, images, context.engines)
    axis, notes = probe_axis(
        options.get("probe"), options.get("attacks"), options.get("inject_field"), target
    )
    return None if axis is None else ProbeRun(axis, notes)


def restore(record: Mapping[str, Any]) -> dict[str, Any]:
    """A re-run's ``probe`` entry: the attack and canary, so that the re-run repeats it (the
    verdict is judged again)."""
    probe = record.get("probe")
    if not isinstance(probe, dict):
        return {}
    return {"probe": {k: v for k, v in probe.items() if k not in VERDICT_KEYS}}


def restore_media(
    record: Mapping[str, Any], read: Callable[[Mapping[str, Any]], list[Any]]
) -> list[Any] | None:
    """An ``inject-image`` (``inject-audio``) probe column's image (clip) is the recorded
    original with the recorded attack drawn (spoken) in again: the attacked copy exists only in
    the run. An ``inject-audio`` column without a clip of its own had the speech as its clip:
    it is spoken again. None for other columns."""
    probe = record.get("probe")
    original = {"inject-image": "image", "inject-audio": "audio"}.get(
        str(probe.get("kind")) if isinstance(probe, dict) else ""
    )
    if not isinstance(probe, dict) or original is None:
        return None
    entries = list((record.get("prompt") or {}).get("media") or [])
    index = next(i for i, e in enumerate(entries) if e.get("source") == "probe")
    if original in probe:
        entries[index] = probe[original]
    else:
        del entries[index]
    return redraw(probe, read({"prompt": {"media": entries}}))


def rerun_finisher(records: Sequence[Mapping[str, Any]]) -> Callable[[Any], None] | None:
    """A re-run of probe columns judges their verdicts again."""
    if not any(isinstance(r.get("probe"), dict) for r in records):
        return None
    from lmwidgets.prompting.probe_verdicts import judge_comparison

    return judge_comparison


def table(result: Any) -> dict[str, Any] | None:
    """A probe run's ``to_pandas()`` columns: probe_kind, attack, canary, probe_verdict and
    attack_success (None for the columns that attack nothing)."""
    probe = result.probe
    if probe is None:
        return None
    verdict = probe.get("verdict")
    return {
        "probe_kind": probe.get("kind"),
        "attack": (probe.get("attack") or {}).get("name"),
        "canary": probe.get("canary"),
        "probe_verdict": verdict,
        "attack_success": None if verdict is None else verdict in ("leaked", "followed"),
    }


def probe_cell(probe: dict[str, Any] | None) -> dict[str, Any] | None:
    """A probe column's verdict for its cell: kind, attack name, verdict, evidence (bounded)."""
    if not isinstance(probe, dict):
        return None
    from lmwidgets.core.safe_text import LABEL_LIMIT, SHORT_LIMIT, shorten

    attack = probe.get("attack")
    attack = attack if isinstance(attack, dict) else {}
    verdict = probe.get("verdict")
    return {
        "kind": shorten(str(probe.get("kind", "")), LABEL_LIMIT),
        "attack": shorten(str(attack.get("name", "")), LABEL_LIMIT),
        "verdict": None if verdict is None else str(verdict),
        "evidence": shorten(str(probe.get("evidence") or ""), SHORT_LIMIT),
    }


def add_options(parser: Any) -> None:
    """``%%prompt``'s probe options."""
    parser.add_argument(
        "--probe",
        default=None,
        metavar="KIND[,KIND]|all",
        help="Attack the prompt: beside it, columns that try to leak the system prompt (leak), "
        "lift its rules (override), or hijack it with an instruction in the {field} data "
        "(inject), drawn into the image (inject-image) or spoken into the audio (inject-audio, "
        "with espeak-ng); 'all' runs every probe that applies. "
        "Each column says held, leaked or followed; the summary gives the attack success rate.",
    )
    parser.add_argument(
        "--attacks",
        default=None,
        metavar="VAR|FILE.json",
        help="Your attack set for --probe: a variable holding {kind: [attack, ...]} (or a list "
        "of attack dicts with a 'kind'), or a JSON file with either; it replaces the built-in "
        "attacks of the kinds it gives (lmwidgets.default_attacks() is the built-in set).",
    )
    parser.add_argument(
        "--inject-field",
        default=None,
        metavar="FIELD",
        help="The {FIELD} that --probe inject writes its instruction into (default: the "
        "prompt's last field).",
    )


def read_options(args: Any, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The probe keywords of ``%%prompt``'s flags; ``--attacks`` is a notebook variable, else
    the path of a JSON file."""
    attacks = args.attacks
    if attacks is not None and not (attacks not in namespace and attacks.endswith(".json")):
        if attacks not in namespace:
            raise InvalidArgumentError(
                f"--attacks {attacks}: no variable called {attacks!r} is defined in the notebook."
            )
        attacks = namespace[attacks]
    return {"probe": args.probe, "attacks": attacks, "inject_field": args.inject_field}


KIND = register_kind(
    AxisKind(
        name="probe",
        after="top_p",
        build=build,
        keywords=("probe", "attacks", "inject_field"),
        asks=("probe",),
        flag="--probe",
        title="probes",
        agreement=False,
        baseline=NO_PROBE,
        label=lambda value_id: "no probe" if value_id == NO_PROBE else value_id,
        error=ProbeUnavailableError,
        add_options=add_options,
        read_options=read_options,
        restore=restore,
        restore_media=restore_media,
        rerun_finisher=rerun_finisher,
        table=table,
        cell_value=lambda result: getattr(result, "probe", None),
        cell=probe_cell,
        static_head="lmwidgets.sharing.static_probes:probe_html",
        static_line="lmwidgets.sharing.static_probes:probe_line",
    )
)
