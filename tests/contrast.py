"""Contrast ratios of marks as the browser draws them, for the browser tests of every mark
(verdicts ✓ / ✗, agreement marks, ratings, judge verdicts) in light and dark themes.

:func:`contrasts` measures, for every element a CSS selector matches, the WCAG contrast ratio of
one of its colours (its text ``color``, a pseudo-element's text, or a border's colour) against
the background it is drawn on: the element's own background and its ancestors' composited
(translucent layers blended, as the page paints them), and for a border also the background
outside it. Colours are resolved by the browser itself (a 1×1 canvas), so ``rgb()``,
``color(srgb ...)`` (what ``color-mix()`` computes to) and named colours all work.
:func:`assert_contrast` fails with every element below the minimum listed.

Usage (another mark)::

    from contrast import assert_contrast
    assert_contrast(page, [".lmw-rating .lmw-thumb"], minimum=3.0)
    assert_contrast(page, [".lmw-col[data-agree='minor'] .lmw-celltop"], pseudo="::after")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: WCAG 2.x: 3:1 for large text and for graphical marks (1.4.11), the bar every mark must reach.
MARK_MINIMUM = 3.0

_MEASURE_JS = """([selector, pseudo, prop]) => {
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const rgba = (css) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.fillStyle = 'rgba(0, 0, 0, 0)';
    ctx.fillStyle = css;
    ctx.fillRect(0, 0, 1, 1);
    const d = ctx.getImageData(0, 0, 1, 1).data;
    return [d[0], d[1], d[2], d[3] / 255];
  };
  const over = (top, base) => base.map((v, i) => v * (1 - top[3]) + top[i] * top[3]);
  const backdrop = (node) => {
    const layers = [];
    for (let e = node; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    if (!layers.length || layers[layers.length - 1][3] < 1) {
      layers.push(rgba(getComputedStyle(document.body).backgroundColor || 'white'));
    }
    let base = [255, 255, 255];
    for (const c of layers.reverse()) base = over(c, base);
    return base;
  };
  const lum = (rgb) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(rgb[0]) + 0.7152 * f(rgb[1]) + 0.0722 * f(rgb[2]);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const hex = (c) => '#' + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  return [...document.querySelectorAll(selector)].filter((el) => el.getClientRects().length).map((el) => {
    const style = getComputedStyle(el, pseudo || null);
    const inside = backdrop(el);
    const backgrounds = [inside];
    if (prop !== 'color' && el.parentElement) backgrounds.push(backdrop(el.parentElement));
    const fg = rgba(style.getPropertyValue(prop));
    const ratios = backgrounds.map((bg) => ratio(over(fg, bg), bg));
    const worst = ratios.indexOf(Math.min(...ratios));
    return {
      selector, pseudo: pseudo || '', prop,
      text: pseudo ? style.content : (el.textContent || '').trim().slice(0, 40),
      ratio: ratios[worst], colour: hex(over(fg, backgrounds[worst])), background: hex(backgrounds[worst]),
      theme: document.body.dataset.jpThemeName || '',
    };
  });
}"""


def contrasts(
    page: Any, selectors: Sequence[str], *, pseudo: str | None = None, prop: str = "color"
) -> list[dict[str, Any]]:
    """For each visible element each selector matches: ``{selector, text, ratio, colour,
    background, theme}``. ``pseudo`` (``"::after"``) measures a pseudo-element's colour;
    ``prop`` another colour property (``"border-left-color"``), measured against the
    background inside and outside the element (the lower ratio counts)."""
    found: list[dict[str, Any]] = []
    for selector in selectors:
        found += page.evaluate(_MEASURE_JS, [selector, pseudo, prop])
    return found


def assert_contrast(
    page: Any,
    selectors: Sequence[str],
    *,
    minimum: float = MARK_MINIMUM,
    pseudo: str | None = None,
    prop: str = "color",
) -> list[dict[str, Any]]:
    """Every element the selectors match reaches ``minimum``; each selector matches at least
    one visible element (a mark that is not drawn is not checked). Returns the measurements."""
    found = contrasts(page, selectors, pseudo=pseudo, prop=prop)
    missing = [s for s in selectors if not any(f["selector"] == s for f in found)]
    assert not missing, f"no visible element matches {missing}"
    low = list(
        {
            (f["selector"], f["pseudo"], f["colour"], f["background"]): f
            for f in found
            if f["ratio"] < minimum
        }.values()
    )  # one line per colour pair, not per element
    assert not low, "below {}:1: {}".format(
        minimum,
        "; ".join(
            f"{f['selector']}{f['pseudo']} {f['prop']} {f['text']!r} {f['colour']} on "
            f"{f['background']} = {f['ratio']:.2f} ({f['theme']})"
            for f in low
        ),
    )
    return found
