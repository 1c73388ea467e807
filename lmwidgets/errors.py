"""Errors raised by lmwidgets.

Every error a user can cause is an :class:`LmWidgetsError` subclass whose message names the
culprit and says what to do. In a notebook they are shown as one short line (no traceback from
library internals) and still fail the cell, so "Run all" stops.
"""

from __future__ import annotations

from typing import Any


class LmWidgetsError(Exception):
    """Base class of all lmwidgets errors."""


class InvalidArgumentError(LmWidgetsError, ValueError):
    """A flag or argument has a value outside its allowed range."""


class ModelNotFoundError(LmWidgetsError):
    """A model source (path, file or hub id) cannot be found or read."""


class UnsafeWeightsError(LmWidgetsError):
    """Weights are stored as pickle files, which can run code when loaded."""


class RemoteCodeError(LmWidgetsError):
    """A model or adapter needs custom code from its repository (``trust_remote_code``)."""


class UnknownModelError(LmWidgetsError, KeyError):
    """A model name that is not loaded."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class NoModelLoadedError(LmWidgetsError):
    """A prompt was run before any model was loaded."""


class NameTakenError(LmWidgetsError):
    """A name (model or adapter) is already in use."""


class DeviceError(LmWidgetsError):
    """The requested device or dtype is not available on this machine."""


class ModelLoadError(LmWidgetsError):
    """Loading a model failed for a reason other than the ones above."""


class LoadOutOfMemoryError(ModelLoadError):
    """Not enough memory to load a model (nothing was registered; loaded models are kept)."""


class PromptTooLongError(LmWidgetsError):
    """The rendered prompt does not fit into the model's context window."""


class PromptError(LmWidgetsError):
    """A prompt cannot be rendered (for example an empty cell)."""


class StrategyError(LmWidgetsError):
    """A prompting strategy is unknown or misconfigured."""


class ProbeUnavailableError(LmWidgetsError):
    """A probe (``--probe``) this prompt or model cannot run: no system prompt to leak, no
    ``{field}`` to inject into, no image, a model that hears no audio, or no espeak-ng."""


class ExamplesError(LmWidgetsError):
    """Few-shot examples are missing or have the wrong shape."""


class DatasetError(LmWidgetsError):
    """A dataset is missing or has the wrong shape."""


class AdapterError(LmWidgetsError):
    """A LoRA adapter cannot be loaded, found or used."""


class MediaError(LmWidgetsError):
    """A media input (an image, ...) cannot be used with this model or prompt."""


class ImageError(MediaError):
    """An image cannot be found, read or used (missing file, corrupt data, wrong type, a
    region outside the image, more images than the model accepts, a text-only model)."""


class AudioError(MediaError):
    """An audio clip cannot be found, read or used (missing or corrupt file, an unsupported
    value, no sample rate, a clip outside the audio, an empty or too long clip, a model that
    takes no audio)."""


class RecordError(LmWidgetsError):
    """A saved run record cannot be read or re-run."""


class GenerationError(LmWidgetsError):
    """Generation failed part way. ``partial`` holds the :class:`Comparison` with the text so far."""

    def __init__(self, message: str, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class ServerError(GenerationError):
    """A served model's server could not be reached, refused a request, timed out or broke off.

    The message names the server (its URL without credentials) and the cause; during a run,
    ``partial`` holds the :class:`Comparison` with finished columns and the text so far.
    """


class GenerationInterrupted(KeyboardInterrupt):
    """The kernel was interrupted during generation; ``partial`` holds the text so far."""

    def __init__(self, partial: Any = None) -> None:
        super().__init__("generation interrupted; the text so far is kept")
        self.partial = partial


class ForkError(LmWidgetsError):
    """A fork cannot be made: no such column or position, no token details on the column, a
    token that is not an alternative there, or a model that cannot take the forced start."""


class NoEarlierRunError(LmWidgetsError):
    """``--vs previous`` found no earlier run of the cell (in the session or the saved
    notebook)."""


class KernelInterruptedError(LmWidgetsError):
    """The kernel was interrupted (the toolbar's stop square) while ``%lm`` or ``%%prompt`` ran.

    Shown as one line like every lmwidgets error, and the cell still fails, so "Run all" stops
    there; the partial result of a prompt stays bound to ``--out``.
    """


class OutOfMemoryError(GenerationError):
    """The device ran out of memory during generation; the partial text is kept."""


__all__ = [name for name in dir() if name.endswith("Error")] + ["GenerationInterrupted"]


class ConstraintError(LmWidgetsError):
    """A structured-answer constraint (``--json``, ``--regex``, ``--one-of``, ``--grammar``)
    that cannot be used: an invalid schema or pattern, a grammar with a syntax error, one that
    admits no answer, or an engine that cannot enforce it."""


class StatisticsError(LmWidgetsError, ValueError):
    """Statistics that cannot be computed for a comparison: an unknown column, columns not on
    the same dataset items, a run without a dataset or without scores, or one still running."""


class RatingError(LmWidgetsError):
    """A rating or preference that cannot be recorded: the comparison is still running, the
    column (or dataset item) is unknown, or the value is not a rating (``up``, ``down``)."""


class ChoicesError(InvalidArgumentError):
    """Given choices (``--choices``, a dataset's ``choices`` column) that cannot be scored:
    empty, not text, or asked of a strategy or model that cannot score them."""
