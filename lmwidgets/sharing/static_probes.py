"""A probe column's verdict in the static copy: held / leaked / followed, in words and colour
(theme variables, with the same success / error colours as dataset verdicts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmwidgets.core.safe_text import escape_html, shorten
from lmwidgets.sharing.static_style import _CHIP, ERROR_BG, INVERSE_FG, SMALL, SUCCESS_BG

if TYPE_CHECKING:
    from lmwidgets.core.results import Result

#: How each verdict reads: the attack failed (held) or worked (leaked, followed).
VERDICT_WORDS = {
    "held": "✓ held",
    "leaked": "✗ leaked",
    "followed": "✗ followed the attack",
}
_EVIDENCE_LIMIT = 160


def probe_line(result: Result) -> str:
    """``'Probe leak:repeat · ✗ leaked (the canary PELICAN-4821 appears)'``; '' for a column
    that attacks nothing."""
    probe = result.probe
    if probe is None:
        return ""
    attack = probe.get("attack") or {}
    name = f"{probe.get('kind')}:{attack.get('name')}"
    verdict = probe.get("verdict")
    words = VERDICT_WORDS.get(str(verdict), "not judged")
    evidence = shorten(str(probe.get("evidence") or ""), _EVIDENCE_LIMIT)
    return f"Probe {name} · {words}" + (f" ({evidence})" if evidence else "")


def probe_html(result: Result) -> str:
    """The verdict pill and its evidence (escaped); '' for a column that attacks nothing."""
    probe = result.probe
    if probe is None:
        return ""
    verdict = str(probe.get("verdict"))
    words = VERDICT_WORDS.get(verdict, "not judged")
    background = SUCCESS_BG if verdict == "held" else ERROR_BG
    pill = (
        f'<span class="lmw-probe" data-verdict="{escape_html(verdict)}" style="{_CHIP};'
        f'background:{background};color:{INVERSE_FG};font-weight:bold">{escape_html(words)}</span>'
    )
    evidence = shorten(str(probe.get("evidence") or ""), _EVIDENCE_LIMIT)
    return pill + (f' <span style="{SMALL}">{escape_html(evidence)}</span>' if evidence else "")
