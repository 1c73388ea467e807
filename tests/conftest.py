"""Shared fixtures: tiny random-weight models and a clean model registry per test."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from tiny_models import build_llama, build_tiny_llava

# `make test` (and so CI) replays the same fuzz examples every run: a red CI must be reproducible
# and caused by a change. `make fuzz` explores new examples, many more of them.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)  # with LMWIDGETS_FUZZ_SCALE for more
if os.environ.get("LMWIDGETS_FUZZ"):
    settings.load_profile(os.environ["LMWIDGETS_FUZZ"])


def _user_cache_dir() -> Path:
    from lmwidgets.engines.transformers.cache import cache_dir

    return cache_dir()


_USER_CACHE = _user_cache_dir()


def _private_cache_dir(parent: Path) -> Path:
    """A fresh lmwidgets cache dir (``$LMWIDGETS_CACHE``) whose ``gguf`` folder is the user's:
    the response cache stays private to the tests, while the de-quantized default model (slow
    to make) is shared, and the user's weight hashes are read (a test's own writes replace the
    link, never the user's file)."""
    shared = _USER_CACHE / "gguf"
    shared.mkdir(parents=True, exist_ok=True)
    parent.mkdir(parents=True, exist_ok=True)
    (parent / "gguf").symlink_to(shared, target_is_directory=True)
    if (_USER_CACHE / "hashes.json").is_file():
        (parent / "hashes.json").symlink_to(_USER_CACHE / "hashes.json")
    return parent


# Kernels, servers and notebooks the tests start in other processes inherit a private cache too.
_SESSION_CACHE = _private_cache_dir(Path(tempfile.mkdtemp(prefix="lmwidgets-test-cache-")))
os.environ["LMWIDGETS_CACHE"] = str(_SESSION_CACHE)
atexit.register(shutil.rmtree, _SESSION_CACHE, True)  # the gguf link goes, not what it links to


@pytest.fixture(autouse=True)
def private_response_cache(tmp_path_factory, monkeypatch):
    """Every test has its own empty response cache (tests never share cached answers, and never
    write them into the user's home), and the process defaults of the cache as shipped."""
    from lmwidgets.run.cache import SETTINGS, CacheSettings

    directory = _private_cache_dir(tmp_path_factory.mktemp("lmwidgets-cache"))
    monkeypatch.setenv("LMWIDGETS_CACHE", str(directory))
    monkeypatch.setattr(SETTINGS, "enabled", CacheSettings.enabled)
    monkeypatch.setattr(SETTINGS, "limit_bytes", CacheSettings.limit_bytes)
    return directory


#: What the scripted tiny LLaVA always answers (one added token per chunk).
SCRIPTED_ANSWER = ['[{"bbox_2d": [', "8, 6, 40, 30", '], "label": "cat"}]']


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama with a ChatML chat template (safetensors)."""
    return build_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_plain_dir(tmp_path_factory) -> Path:
    """A 2-layer random Llama without a chat template."""
    return build_llama(tmp_path_factory.mktemp("models") / "tiny-plain", chat=False, seed=1)


@pytest.fixture(scope="session")
def vlm_dir(tmp_path_factory) -> Path:
    """A tiny random LLaVA (CLIP vision tower + 2-layer Llama) with its processor."""
    return build_tiny_llava(tmp_path_factory.mktemp("models") / "tiny-llava")


@pytest.fixture(scope="session")
def scripted_vlm_dir(tmp_path_factory) -> Path:
    """A tiny LLaVA that always answers :data:`SCRIPTED_ANSWER` (a Qwen-style box)."""
    return build_tiny_llava(
        tmp_path_factory.mktemp("models") / "scripted-llava", answer=SCRIPTED_ANSWER, seed=1
    )


@pytest.fixture
def registry():
    """The global registry, emptied after the test."""
    from lmwidgets.engines.registry import REGISTRY

    yield REGISTRY
    for name in REGISTRY.names():
        REGISTRY.remove(name)


@pytest.fixture
def tiny(registry, tiny_dir):
    """The tiny chat model, loaded as 'tiny'."""
    import lmwidgets

    return lmwidgets.load_model(str(tiny_dir), name="tiny")


@pytest.fixture
def vlm(registry, vlm_dir):
    """The tiny LLaVA, loaded as 'vlm' (up to 3 images per prompt)."""
    import lmwidgets

    return lmwidgets.load_model(str(vlm_dir), name="vlm", max_images=3)


@pytest.fixture
def shell(registry):
    """An IPython shell with lmwidgets loaded."""
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or get_ipython()
    ip.run_line_magic("load_ext", "lmwidgets")
    yield ip
    for name in list(ip.user_ns):
        if name.startswith("lmw_"):
            del ip.user_ns[name]


@pytest.fixture(scope="session")
def vllm(tmp_path_factory):
    """A real vLLM server serving the default model (see ``tests/vllm_server.py``): its URL.

    The API key is in ``$LMWIDGETS_TEST_API_KEY`` for the session.
    """
    import os

    from vllm_server import KEY_ENV, make_key, require_vllm, vllm_server

    from lmwidgets.engines.transformers.loading import served_checkpoint

    require_vllm()
    key = make_key()
    os.environ[KEY_ENV] = key
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    try:
        with vllm_server(served_checkpoint(), log, key) as url:
            yield url
    finally:
        os.environ.pop(KEY_ENV, None)


@pytest.fixture
def lean_steps(monkeypatch):
    """How many times a decoder layer took the lean decoding step (its attention ran)."""
    from lmwidgets.engines.transformers import lean_decode

    calls = []
    attention = lean_decode._attention

    def counted(*args, **kwargs):
        calls.append(1)
        return attention(*args, **kwargs)

    monkeypatch.setattr(lean_decode, "_attention", counted)
    return calls
