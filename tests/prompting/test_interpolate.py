import pytest

from lmwidgets.prompting.interpolate import field_names, interpolate


class _Obj:
    name = "widget"
    _secret = "hidden"


NS = {"country": "France", "d": {"k": 5}, "items": ["a", "b"], "pi": 3.14159, "obj": _Obj()}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Capital of {country}?", "Capital of France?"),
        ("{unknown} stays", "{unknown} stays"),
        ("{country} and {unknown}", "France and {unknown}"),
        ("{{country}}", "{country}"),
        ('{"json": 1}', '{"json": 1}'),
        ("def f(): return {x: 1 for x in y}", "def f(): return {x: 1 for x in y}"),
        ("{d[k]}", "{d[k]}"),  # bare keys are not looked up
        ("{d['k']}", "5"),
        ('{d["missing"]}', '{d["missing"]}'),
        ("{items[1]}", "b"),
        ("{items[9]}", "{items[9]}"),
        ("{pi:.2f}", "3.14"),
        ("{country!r}", "'France'"),
        ("{obj.name}", "widget"),
        ("{obj._secret}", "{obj._secret}"),  # private attributes are never reached
        ("{obj.nope}", "{obj.nope}"),
        ("{country:>12x}", "{country:>12x}"),  # a bad format spec stays as written
    ],
)
def test_interpolate(text, expected):
    assert interpolate(text, NS) == expected


def test_field_names():
    assert field_names("{a} {b.c} {a} {d[0]} {{e}}") == ["a", "b", "d"]
