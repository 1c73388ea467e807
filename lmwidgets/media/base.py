"""Media as data: one input type for everything a prompt carries besides text.

A :class:`MediaInput` has a kind (``image`` today), says where it came from, what identifies it
(the sha256 of its decoded content, and of the file bytes when there were any), what a run record
says about it, and how the widget and the static copy preview it. Engines declare the kinds they
accept (:attr:`~lmwidgets.engines.base.Capabilities.media`); :func:`check_accepted` is the one
check of a prompt's media against a model. A new kind is one module with a ``MediaInput``
subclass, registered with :func:`register_kind`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from lmwidgets.errors import MediaError


class MediaInput:
    """Base class of a prompt's media items. Subclasses set :attr:`kind` and fill the fields."""

    #: The media kind (``image``...); engines list the kinds they accept.
    kind: ClassVar[str] = "media"
    name: str
    source: str  # file | url | variable | value
    sha256: str
    bytes_sha256: str | None
    location: str | None

    def record(self) -> dict[str, Any]:
        """What a run record says about this item (always with its ``kind``)."""
        raise NotImplementedError

    def widget_data(self) -> dict[str, Any]:
        """What the widget and the static copy need to preview it (always with its ``kind``)."""
        raise NotImplementedError


#: Media kinds by name, and the function that reads a recorded item back (for re-runs).
KINDS: dict[str, Callable[..., MediaInput]] = {}


def register_kind(kind: str, load: Callable[..., MediaInput]) -> None:
    """Make ``kind`` known: ``load(value, name=...)`` reads an item of it from a value or path."""
    KINDS[kind] = load


def kind_of(entry: dict[str, Any]) -> str:
    """The kind of a recorded media entry (records before media kinds hold images only)."""
    return str(entry.get("kind") or "image")


#: A model to suggest (``%lm load ...``) when a prompt's media need one, by kind.
EXAMPLE_MODELS = {
    "image": "HuggingFaceTB/SmolVLM-256M-Instruct --as vlm",
    "audio": "Qwen/Qwen2-Audio-7B-Instruct --as alm",
}


def check_accepted(
    model: str,
    description: str,
    accepted: frozenset[str],
    limit: int | None,
    media: Sequence[MediaInput],
) -> None:
    """Raise :class:`MediaError` (its kind's subclass where there is one) when a model that
    accepts ``accepted`` kinds, at most ``limit`` items, cannot take ``media``."""
    from lmwidgets.errors import AudioError, ImageError

    for item in media:
        if item.kind not in accepted:
            error = {"image": ImageError, "audio": AudioError}.get(item.kind, MediaError)
            what = (
                "a text-only model" if not accepted else f"a model of {', '.join(sorted(accepted))}"
            )
            example = EXAMPLE_MODELS.get(item.kind, EXAMPLE_MODELS["image"])
            raise error(
                f"{model} is {what} ({description}); {item.kind} inputs need a model that "
                f"accepts them. Load one, e.g. `%lm load {example}`, and pass `--model "
                f"{example.rsplit(' ', 1)[-1]}`."
            )
    if limit is not None and len(media) > limit:
        kinds = "/".join(sorted({item.kind for item in media}))
        raise (ImageError if kinds == "image" else MediaError)(
            f"{model} accepts at most {limit} {kinds}(s) per prompt, but {len(media)} were "
            "given. Compare them in separate prompts, or set the limit with "
            "`%lm load SOURCE --max-images N` if you know the model handles more."
        )
