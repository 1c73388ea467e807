"""A structured column's marks in the static copy: ✓ valid / ✗ invalid (enforced or free) beside
the answer, and a JSON answer written out readably, folded after the text."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import STATIC_PROMPT_LIMIT, escape_html, truncate
from lmwidgets.sharing.static_style import ERROR, PRE, SMALL, SUCCESS, flag_chip

if TYPE_CHECKING:
    from lmwidgets.core.results import Result


def structured_flags(result: Result) -> str:
    """A structured answer's verdict: ✓ valid / ✗ invalid, and whether it was enforced."""
    if result.valid is None:
        return ""
    structured = result.extras.get("structured") or {}
    how = "enforced" if structured.get("enforced") else "free"
    if result.valid:
        return flag_chip(f"✓ valid · {how}", SUCCESS)
    return flag_chip(f"✗ invalid · {how}", ERROR)


def parsed_html(result: Result) -> str:
    """A structured JSON answer written out readably, folded (``<details>``, escaped)."""
    structured = result.extras.get("structured") or {}
    kind = (structured.get("constraint") or {}).get("kind")
    if kind != "json" or not result.valid:
        return ""
    shown, _ = truncate(
        json.dumps(structured.get("parsed"), indent=2, ensure_ascii=False), STATIC_PROMPT_LIMIT
    )
    return (
        f'<details class="lmw-parsed" style="margin-top:4px"><summary style="{SMALL};'
        f'cursor:pointer">parsed JSON</summary><pre style="{PRE}">{escape_html(shown)}</pre>'
        "</details>"
    )
