"""Media as data: the registry of media kinds, and the one input type of every kind.

A :class:`MediaInput` has a kind (``image``, ...), says where it came from, what identifies it
(the sha256 of its decoded content, and of the file bytes when there were any), what a run record
says about it, and how the widget and the static copy preview it. Everything the layers above
need to know about a kind is one :class:`MediaKind` in :data:`KINDS`: how a value becomes an
input, the ``%%prompt`` option and placeholder, the engine capability, the error class, the
dataset column, a cheap up-front check of a dataset value and the static preview. The runner,
strategies, records, replay, the static copy and the widget look kinds up here and never name
one, so a new kind is one module: a ``MediaInput`` subclass and a :func:`register_kind` call
(plus, optionally, a JS preview module; the widget shows any kind's ``src`` and ``caption``).

Engines declare the kinds they accept (:attr:`~lmwidgets.engines.base.Capabilities.media`);
:func:`check_accepted` is the one check of a prompt's media against a model.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from lmwidgets.errors import MediaError

#: Modules that register lmwidgets' own kinds (imported on first use of the registry).
BUILTIN_MODULES: list[str] = ["lmwidgets.media.images", "lmwidgets.media.audio"]

_DATA_URL = re.compile(r"^data:image/(jpeg|png);base64,[A-Za-z0-9+/=]+$")
#: What a media value that is an http(s) URL starts with (it is downloaded, not a path).
URL = re.compile(r"^https?://", re.IGNORECASE)


class MediaInput:
    """Base class of a prompt's media items. Subclasses set :attr:`kind` and fill the fields."""

    #: The media kind (``image``...); engines list the kinds they accept.
    kind: ClassVar[str] = "media"
    name: str
    source: str  # file | url | variable | value | probe
    sha256: str
    bytes_sha256: str | None
    location: str | None

    def record(self) -> dict[str, Any]:
        """What a run record says about this item (always with its ``kind``)."""
        raise NotImplementedError

    def identity(self, **fields: Any) -> dict[str, Any]:
        """What every kind's :meth:`record` says: the kind, name, where the item came from and
        its hashes, then the kind's own ``fields``, then its location when it has one."""
        info: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "source": self.source,
            "sha256": self.sha256,
            "bytes_sha256": self.bytes_sha256,
            **fields,
        }
        if self.location is not None:
            info["location"] = self.location
        return info

    def widget_data(self) -> dict[str, Any]:
        """What the widget and the static copy need to preview it: always its ``kind`` and
        ``name``; a ``src`` (a small PNG/JPEG data URL) and a ``caption`` are shown for any
        kind, other keys by the kind's own preview."""
        raise NotImplementedError

    def item_preview(self) -> dict[str, Any]:
        """A dataset row's preview (smaller than :meth:`widget_data` where that matters: it is
        kept once per row in the saved grid)."""
        return self.widget_data()

    def restore(self, entry: Mapping[str, Any]) -> MediaInput:
        """This item as a record's ``entry`` had it (e.g. with its recorded region): re-runs
        read the value again, then restore what the record adds to it."""
        return self

    def release(self) -> None:
        """Drop the decoded content once a batch has used it (datasets decode items lazily);
        :meth:`record` and the previews keep working."""


@dataclass(frozen=True)
class MediaKind:
    """One media kind: everything the layers above need to know about it (see the module
    docstring). Only ``name`` and ``load`` are required."""

    #: The kind's name: the ``{"type": ...}`` of its content parts and the engine capability.
    name: str
    #: ``load(value, name=None) -> MediaInput``: how a value (or path, URL...) becomes an input.
    load: Callable[..., MediaInput]
    #: The ``%%prompt`` option (``--image``; default ``--<name>``) and a short alias.
    option: str = ""
    short: str | None = None
    #: ``%%prompt --help`` text of the option.
    help: str = ""
    #: The kind's name for several items in messages (default ``<name>s``; ``audio``: itself).
    plural: str = ""
    #: Where items go in the prompt text (``{img}``; default ``{<name>}``).
    placeholder: str = ""
    #: The :class:`~lmwidgets.errors.MediaError` subclass of this kind's problems.
    error: type[MediaError] = MediaError
    #: The engine capability (a member of ``Capabilities.media``) it needs; default ``name``.
    capability: str = ""
    #: How to get a model that takes it (said when a model does not).
    hint: str = ""
    #: The dataset column that holds one per item (default ``name``).
    column: str = ""
    #: ``check(value, label)``: a cheap test of a dataset value before anything runs (types,
    #: that a path exists); raises ``error``. None: values are only checked when decoded.
    check: Callable[[Any, str], None] | None = None
    #: ``static_html(preview) -> str``: the static copy's preview of :meth:`MediaInput.
    #: widget_data` (escaped HTML); None: the generic one (``src`` picture and caption).
    static_html: Callable[[Mapping[str, Any]], str] | None = None
    #: ``line(preview) -> str``: one line of plain text about an item (static Markdown).
    line: Callable[[Mapping[str, Any]], str] | None = None
    #: Prompt options (attributes of the strategies' ``Options``) that ``load`` takes as
    #: keywords when they are set (audio: ``sample_rate``, for arrays that carry none).
    load_options: tuple[str, ...] = ()
    #: ``apply(media, options) -> media``: the kind's own prompt options applied to the
    #: prompt's items (audio: ``--clip``); other kinds' items pass through.
    apply: Callable[[list[MediaInput], Any], list[MediaInput]] | None = None
    #: ``reload(value, entry, name) -> MediaInput``: how a re-run reads a recorded item again
    #: (audio: arrays with the recorded rate); None: ``load(value, name=name)``.
    reload: Callable[[Any, Mapping[str, Any], str], MediaInput] | None = None
    #: Record fields that :meth:`MediaInput.restore` puts back on a read item (images:
    #: ``region``, ``region_mode``): a dataset item keeps them however often it is read again.
    marks: tuple[str, ...] = ()

    def read_again(self, value: Any, entry: Mapping[str, Any], name: str) -> MediaInput:
        """A recorded item read again from ``value`` (see :attr:`reload`)."""
        if self.reload is not None:
            return self.reload(value, entry, name)
        return self.load(value, name=name)

    @property
    def flag(self) -> str:
        """The ``%%prompt`` option, with its dashes."""
        return self.option or f"--{self.name}"

    @property
    def dest(self) -> str:
        """The option's attribute on parsed arguments (``--image`` -> ``image``)."""
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def several(self) -> str:
        """The kind's name for several items (``images``)."""
        return self.plural or f"{self.name}s"

    @property
    def marker(self) -> str:
        """The placeholder that puts an item where it is written."""
        return self.placeholder or "{" + self.name + "}"

    @property
    def needs(self) -> str:
        """The engine capability items of this kind need."""
        return self.capability or self.name

    @property
    def without(self) -> str:
        """The strategy that runs the prompt without this kind's items (``no-image``)."""
        return f"no-{self.name}"

    @property
    def dataset_column(self) -> str:
        """The dataset column that gives each item its own one."""
        return self.column or self.name

    def describe(self, preview: Mapping[str, Any]) -> str:
        """One line of plain text about an item (its name, and what the kind adds)."""
        if self.line is not None:
            return self.line(preview)
        caption = preview.get("caption")
        return f"{preview.get('name', self.name)}" + (f" ({caption})" if caption else "")

    def html(self, preview: Mapping[str, Any]) -> str:
        """The static copy's preview of an item (escaped)."""
        if self.static_html is not None:
            return self.static_html(preview)
        return generic_html(preview)


#: Media kinds by name.
KINDS: dict[str, MediaKind] = {}
_loaded = False


def register_kind(
    kind: str | MediaKind, load: Callable[..., MediaInput] | None = None, **about: Any
) -> MediaKind:
    """Make a kind known: ``register_kind(MediaKind(...))``, or ``register_kind(name, load,
    **fields)`` with the fields of :class:`MediaKind`. Returns the :class:`MediaKind`."""
    if isinstance(kind, str):
        if load is None:
            raise TypeError("register_kind(name, load): load reads a value of the kind")
        kind = MediaKind(kind, load, **about)
    KINDS[kind.name] = kind
    return kind


def _load_builtins() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)


def all_kinds() -> list[MediaKind]:
    """Every registered kind (lmwidgets' own first), in registration order."""
    _load_builtins()
    return list(KINDS.values())


def get_kind(name: str) -> MediaKind | None:
    """The registered kind called ``name`` (None when there is none)."""
    _load_builtins()
    return KINDS.get(name)


def kind_of(entry: Mapping[str, Any]) -> str:
    """The kind of a recorded media entry (records before media kinds hold images only)."""
    return str(entry.get("kind") or "image")


def error_of(kind: str) -> type[MediaError]:
    """The error class of ``kind``'s problems (:class:`MediaError` for an unknown kind)."""
    found = get_kind(kind)
    return found.error if found is not None else MediaError


def resolve(
    kind: MediaKind,
    spec: Any,
    namespace: Mapping[str, Any] | None = None,
    name: str = "",
    **options: Any,
) -> MediaInput:
    """``--image SPEC`` for any kind: a notebook variable's value when ``SPEC`` names one, else
    a path or URL (named after it), else a value (called ``name``). ``options``: the kind's
    :attr:`~MediaKind.load_options` that are set."""
    if isinstance(spec, str) and namespace is not None and spec in namespace:
        return kind.load(namespace[spec], name=spec, **options)
    if isinstance(spec, (str, os.PathLike)):
        return kind.load(spec, **options)
    return kind.load(spec, name=name or None, **options)


def generic_html(preview: Mapping[str, Any]) -> str:
    """Any kind's static preview: its picture (our own data URLs only) and caption, escaped."""
    from lmwidgets.core.safe_text import escape_html, shorten

    src = preview.get("src")
    name = shorten(str(preview.get("name", "")), 80)
    height = int(preview.get("max_height", 160))
    picture = (
        f'<img src="{escape_html(src)}" alt="{escape_html(name)}" '
        f'style="display:block;max-width:100%;max-height:{height}px">'
        if isinstance(src, str) and _DATA_URL.match(src)
        else ""
    )
    caption = " · ".join(str(p) for p in (name, preview.get("caption")) if p)
    return (
        f'<figure style="margin:0 8px 6px 0;display:inline-block;vertical-align:top">{picture}'
        f'<figcaption style="font-size:11px;opacity:0.75">{escape_html(shorten(caption, 160))}'
        "</figcaption></figure>"
    )


def check_accepted(
    model: str,
    description: str,
    accepted: frozenset[str],
    limit: int | None,
    media: Sequence[MediaInput],
) -> None:
    """Raise the kind's :class:`MediaError` when a model that accepts ``accepted`` kinds, at
    most ``limit`` items, cannot take ``media``."""
    for item in media:
        kind = get_kind(item.kind)
        needs = kind.needs if kind is not None else item.kind
        if needs not in accepted:
            what = (
                "a text-only model" if not accepted else f"a model of {', '.join(sorted(accepted))}"
            )
            hint = (kind.hint if kind is not None else "") or (
                "Load one, e.g. `%lm load SOURCE --as NAME`, and pass `--model NAME`."
            )
            raise error_of(item.kind)(
                f"{model} is {what} ({description}); {item.kind} inputs need a model that "
                f"accepts them. {hint}"
            )
    if limit is not None and len(media) > limit:
        names = sorted({item.kind for item in media})
        error = error_of(names[0]) if len(names) == 1 else MediaError
        raise error(
            f"{model} accepts at most {limit} {'/'.join(names)}(s) per prompt, but {len(media)} "
            "were given. Compare them in separate prompts, or set the limit with "
            "`%lm load SOURCE --max-images N` if you know the model handles more."
        )


@dataclass(eq=False)
class Deferred(MediaInput):
    """A dataset item's media, read only when its batch runs (then released again), so a large
    dataset never sits in memory at once. ``value`` is what the dataset holds (a path, an array,
    a PIL image...); it was checked cheaply up front (:attr:`MediaKind.check`)."""

    value: Any
    media_kind: MediaKind
    name: str
    item: MediaInput | None = field(default=None, repr=False)
    #: Where the dataset holds it (variable, index, column), recorded for reruns; None unknown.
    origin: dict[str, Any] | None = None
    #: What a run adds to the item once read (its kind's :attr:`MediaKind.marks`: an image's
    #: region), put back each time it is read: after a batch released it, in a rerun.
    marks: dict[str, Any] = field(default_factory=dict)
    deferred: ClassVar[bool] = True

    def __post_init__(self) -> None:
        self.kind = self.media_kind.name  # type: ignore[misc]  # per instance: any kind

    def resolve(self) -> MediaInput:
        """The decoded item (decoded now unless it already is; raises the kind's error)."""
        if self.item is None or getattr(self.item, "released", False):
            item = self.media_kind.load(self.value, name=self.name)
            self.item = item.restore(self.marks) if self.marks else item
        return self.item

    def _read(self) -> MediaInput | None:
        """The item (decoded or released), or None when it cannot be read (noted by the run)."""
        if self.item is not None:
            return self.item
        try:
            item = self.resolve()
        except MediaError:
            return None
        item.release()  # read only for its record and previews (e.g. a stopped run's item)
        return item

    def record(self) -> dict[str, Any]:
        item = self._read()
        if item is not None:
            entry = item.record()
        else:
            entry = {"kind": self.kind, "name": self.name, "source": "variable", "sha256": "unread"}
            if isinstance(self.value, (str, os.PathLike)):  # a rerun tries the path again
                entry.update(source="file", location=os.fspath(self.value))
        entry["own"] = True  # a dataset item's own: a rerun shows it in its row again
        if self.origin is not None:
            entry["dataset"] = dict(self.origin)
        return entry

    def widget_data(self) -> dict[str, Any]:
        item = self._read()
        if item is not None:
            return item.widget_data()
        return {"kind": self.kind, "name": self.name, "caption": "could not be read"}

    def item_preview(self) -> dict[str, Any]:
        item = self._read()
        return item.item_preview() if item is not None else self.widget_data()

    def release(self) -> None:
        if self.item is not None:
            self.item.release()

    def content_identity(self) -> dict[str, Any] | None:
        """What identifies the item's content for the response cache, found as cheaply as
        possible so that a re-run need not decode every item to look its rows up: the sha256 of
        its file's or value's bytes, else (an in-memory value: a PIL image, an array) of its
        decoded content. None when it cannot be told without downloading it (a URL) or cannot be
        read (its batch says why)."""
        digest = self._bytes_sha256()
        marks = {"marks": dict(self.marks)} if self.marks else {}
        if digest is not None:
            return {"kind": self.kind, "bytes_sha256": digest, **marks}
        if isinstance(self.value, (str, os.PathLike)) and self.item is None:
            return None  # a URL, or a file that cannot be read
        item = self._read()
        if item is None:
            return None
        if item.bytes_sha256:  # read before (a rerun): the same identity as from its file
            return {"kind": self.kind, "bytes_sha256": item.bytes_sha256, **marks}
        return {"kind": self.kind, "sha256": item.sha256, **marks}

    def _bytes_sha256(self) -> str | None:
        """sha256 of the bytes the item is decoded from (a file's, raw bytes), or None."""
        import hashlib

        value = hf_cell(self.value)
        if isinstance(value, (bytes, bytearray, memoryview)):
            return hashlib.sha256(bytes(value)).hexdigest()
        if not isinstance(value, (str, os.PathLike)):
            return None
        text = os.fspath(value)
        if isinstance(text, str) and URL.match(text):
            return None
        digest = hashlib.sha256()
        try:
            with open(os.path.expanduser(text), "rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
        except OSError:
            return None
        return digest.hexdigest()


def resolved(media: Sequence[MediaInput]) -> list[MediaInput]:
    """``media`` with every :class:`Deferred` item decoded (raises its kind's error)."""
    return [item.resolve() if isinstance(item, Deferred) else item for item in media]


def is_deferred(media: Sequence[MediaInput]) -> bool:
    """Whether ``media`` holds items decoded only when their batch runs."""
    return any(isinstance(item, Deferred) for item in media)


def download(url: str, limit: int, error: type[MediaError], what: str, hint: str) -> bytes:
    """The bytes at an http(s) ``url`` (at most ``limit``), or ``error`` saying why not: what
    the download was (``the image``), and ``hint``, what to do instead."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"User-Agent": "lmwidgets"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read(limit + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise error(
            f"Cannot download {what} {url}: {reason}. Check the URL and your network, or {hint}."
        ) from None
    if len(data) > limit:
        raise error(f"{what.capitalize()} at {url} is larger than {limit:,} bytes.")
    return data


def hf_cell(value: Any) -> Any:
    """A Hugging Face ``datasets`` media cell as a value the kinds read: an undecoded
    ``{"bytes", "path"}`` dict (what ``Dataset.to_list()`` gives for Image and Audio columns)
    becomes its bytes, else its path; a decoded audio dict ``{"array", "sampling_rate"}`` an
    ``(array, rate)`` tuple. Anything else is returned as it is."""
    if not isinstance(value, Mapping):
        return value
    if "array" in value and "sampling_rate" in value:
        import numpy as np

        return (np.asarray(value["array"]), value["sampling_rate"])
    if ("bytes" in value or "path" in value) and set(value) <= {"bytes", "path"}:
        data, path = value.get("bytes"), value.get("path")
        if isinstance(data, (bytes, bytearray, memoryview)) and data:
            return bytes(data)
        if isinstance(path, (str, os.PathLike)) and path:
            return path
    return value


def check_location(value: Any, label: str, error: type[MediaError], what: str) -> bool:
    """The path-or-URL part of every kind's cheap dataset check (:attr:`MediaKind.check`):
    False when ``value`` is neither (the kind checks it), True when it is a URL (downloaded
    only when its batch runs) or a path to a file; ``error`` saying ``no <what> file`` when a
    path names none."""
    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    if isinstance(text, str) and URL.match(text):
        return True
    path = Path(os.path.expanduser(text))
    if not path.is_file():
        raise error(f"{label}: no {what} file {str(path)!r}.")
    return True


def url_name(url: str) -> str:
    """What an item read from ``url`` is called: the URL's last part (else the URL), at most 80
    characters."""
    return url.rsplit("/", 1)[-1][:80] or url[:80]


def read_file(
    path: Path, name: str, error: type[MediaError], what: str, limit: int | None = None
) -> bytes:
    """The bytes of the ``what`` (``image``) file at ``path``, or ``error`` saying why not: no
    such file (nor a notebook variable called ``name``), a directory, larger than ``limit``
    bytes, unreadable."""
    if not path.exists():
        raise error(f"No {what} file {str(path)!r} (and no notebook variable called {name!r}).")
    if path.is_dir():
        article = "an" if what[:1].lower() in "aeiou" else "a"
        raise error(f"{str(path)!r} is a directory, not {article} {what} file.")
    try:
        if limit is not None and path.stat().st_size > limit:
            raise error(f"{str(path)!r} is larger than {limit:,} bytes.")
        return path.read_bytes()
    except OSError as exc:
        raise error(f"Cannot read {str(path)!r}: {exc.strerror or exc}.") from None


def numbered(text: str, option: str, what: str, error: type[MediaError]) -> tuple[int, str]:
    """An option value that may name its item (``--region 2:...``, ``--clip 2:...``):
    ``"N:rest"`` as the N-th ``what``'s index (from 1 written, from 0 returned) and the rest;
    ``"rest"`` as the first's. ``error`` when N is not 1, 2, ..."""
    raw = str(text).strip()
    if ":" not in raw:
        return 0, raw
    head, raw = raw.split(":", 1)
    if not head.strip().isdigit() or int(head) < 1:
        raise error(f"{option} {text!r}: the {what} number before ':' must be 1, 2, ...")
    return int(head) - 1, raw
