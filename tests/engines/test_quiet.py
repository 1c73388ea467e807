"""Library warnings and log notes are silenced while lmwidgets loads and generates, and only then:
the warnings filters and logger levels are restored, also after an error and across threads."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

import lmwidgets
from lmwidgets.engines.transformers.quiet import LIBRARIES, is_quiet, quiet_libraries


def library_warning(message: str = "`is_gradient_checkpointing` is deprecated") -> None:
    """A warning as transformers gives it (its module is where warnings.warn points)."""
    warnings.warn_explicit(
        message, FutureWarning, "modeling_utils.py", 3303, module="transformers.modeling_utils"
    )


def library_note(message: str = "requires torchvision (not installed)") -> None:
    """A log note as transformers gives it (the torchvision notice of image processors)."""
    logging.getLogger("transformers.image_processing_utils").warning(message)


def _state():
    return (
        list(warnings.filters),
        warnings.showwarning,
        {name: logging.getLogger(name).level for name in LIBRARIES},
    )


class _Notes(logging.Handler):
    """The log records that reach transformers' logger (it does not propagate to the root)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def notes():
    handler = _Notes()
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def test_library_notices_go_and_the_users_stay(notes):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_libraries():
            assert is_quiet()
            library_warning()
            library_note()
            warnings.warn("the user's own warning", UserWarning, stacklevel=1)
            warnings.warn_explicit(
                "lmwidgets tells the user", UserWarning, "x.py", 1, module="lmwidgets.api"
            )
            warnings.warn_explicit(
                "lmwidgets calls a deprecated API", FutureWarning, "x.py", 1, module="lmwidgets.x"
            )
        assert not is_quiet()
        shown = [str(w.message) for w in caught]
        assert shown == ["the user's own warning", "lmwidgets tells the user"]
        assert notes == []
        library_warning()  # outside the block they show again: the test can fail
        library_note()
    assert "is_gradient_checkpointing" in str(caught[-1].message)
    assert notes == ["requires torchvision (not installed)"]


def test_state_is_restored_after_an_error():
    before = _state()
    with pytest.raises(RuntimeError), quiet_libraries():
        assert _state() != before
        raise RuntimeError("boom")
    assert _state() == before and not is_quiet()


def test_nested_and_concurrent_uses_restore_what_was_there():
    """Two models generating side by side (one worker thread each) enter and leave in any
    order; a plain catch_warnings per thread would leave the filters of the first one behind."""
    before = _state()
    entered, release = threading.Barrier(3), threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with quiet_libraries():
                entered.wait(timeout=10)
                release.wait(timeout=10)
                with quiet_libraries():  # nested
                    library_warning()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    entered.wait(timeout=10)
    assert is_quiet()
    release.set()
    for thread in threads:
        thread.join(timeout=10)
    assert not errors and not is_quiet()
    assert _state() == before


def test_loading_and_generating_show_no_library_notice(registry, tiny_dir, vlm_dir, capfd, notes):
    """A tiny model and a tiny vision model load and answer without a library warning or log
    note reaching the notebook, even when the libraries emit some on the way."""
    from PIL import Image

    def notices(module, args, output) -> None:
        library_warning()
        library_note()

    tiny = lmwidgets.load_model(str(tiny_dir), name="quiet-text")
    noisy = tiny.model.model.layers[0].register_forward_hook(notices)
    capfd.readouterr()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lmwidgets.load_model(str(vlm_dir), name="quiet-vision", max_images=1)
            lmwidgets.prompt("Hello", model="quiet-text", max_new_tokens=3, display=False)
            lmwidgets.prompt(
                "Hi", model="quiet-text", max_new_tokens=3, temperature=0.7, display=False
            )
            lmwidgets.prompt(
                "What is it?",
                model="quiet-vision",
                images=[Image.new("RGB", (32, 32))],
                max_new_tokens=3,
                display=False,
            )
    finally:
        noisy.remove()
    captured = capfd.readouterr()
    assert [str(w.message) for w in caught] == []
    assert notes == []
    assert "torchvision" not in captured.err + captured.out
    assert "Warning" not in captured.err + captured.out
    assert not is_quiet()
    # Outside lmwidgets' calls, the same notices are shown: nothing stays silenced.
    with warnings.catch_warnings(record=True) as after:
        warnings.simplefilter("always")
        library_warning()
    assert len(after) == 1
