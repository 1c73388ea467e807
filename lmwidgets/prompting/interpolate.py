"""``{name}`` interpolation of prompt text from the notebook namespace.

Follows the convention of jupyter-ai-magics: ``{name}`` (and ``{name.attr}``, ``{name[0]}``,
``{name['key']}``, with an optional ``!r``/``!s`` conversion and ``:spec`` format) is replaced
by the value from the namespace; a name that is not defined stays exactly as written, so prompts
that contain JSON or code keep their braces. ``{{`` and ``}}`` give literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_FIELD = re.compile(
    r"""
    \{\{ | \}\}                                  # escaped braces
    | \{
      (?P<expr>[A-Za-z_]\w*                      # a name
         (?:\.[A-Za-z_]\w* | \[(?:\d+|'[^'\]]*'|"[^"\]]*")\])*)  # .attr, [0], ['key']
      (?:!(?P<conv>[rsa]))?
      (?::(?P<spec>[^{}]*))?
      \}
    """,
    re.VERBOSE,
)
_NAME = re.compile(r"[A-Za-z_]\w*")
_PART = re.compile(r"\.([A-Za-z_]\w*)|\[(\d+)\]|\['([^'\]]*)'\]|\[\"([^\"\]]*)\"\]")


class _Missing(Exception):
    pass


def _resolve(expr: str, namespace: Mapping[str, Any]) -> Any:
    head = _NAME.match(expr)
    if head is None or head.group(0) not in namespace:
        raise _Missing
    value = namespace[head.group(0)]
    for match in _PART.finditer(expr, head.end()):
        attr, index, key1, key2 = match.groups()
        try:
            if attr is not None:
                if attr.startswith("_"):
                    raise _Missing  # never reach into private attributes from prompt text
                value = getattr(value, attr)
            elif index is not None:
                value = value[int(index)]
            else:
                value = value[key1 if key1 is not None else key2]
        except Exception as exc:  # a missing attribute or key, or a user's broken object
            raise _Missing from exc
    return value


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``{name}`` fields of ``text`` from ``namespace``; unknown names stay as written.

    >>> interpolate("Capital of {country}? {unknown}", {"country": "France"})
    'Capital of France? {unknown}'
    >>> interpolate('{{"a": 1}}', {})
    '{"a": 1}'
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        try:
            value = _resolve(match.group("expr"), namespace)
        except _Missing:
            return token
        conv = match.group("conv")
        spec = match.group("spec") or ""
        try:
            if conv == "r":
                value = repr(value)
            elif conv == "a":
                value = ascii(value)
            elif conv == "s":
                value = str(value)
            return format(value, spec)
        except Exception:  # a bad format spec, or a value that cannot be shown: kept as written
            return token

    return _FIELD.sub(replace, text)


def field_names(text: str) -> list[str]:
    """The top-level names referenced by ``{...}`` fields in ``text``, in order of appearance."""
    names: list[str] = []
    for match in _FIELD.finditer(text):
        expr = match.group("expr")
        if expr:
            name = expr.split(".", 1)[0].split("[", 1)[0]
            if name not in names:
                names.append(name)
    return names
