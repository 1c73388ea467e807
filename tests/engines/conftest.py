"""Fixtures shared by the engine tests."""

import pytest

from lmwidgets.engines.transformers import lean_decode


@pytest.fixture
def lean_steps(monkeypatch):
    """How many times a layer took the lean step."""
    calls = []
    attention = lean_decode._attention

    def counted(*args, **kwargs):
        calls.append(1)
        return attention(*args, **kwargs)

    monkeypatch.setattr(lean_decode, "_attention", counted)
    return calls
