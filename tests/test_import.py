import subprocess
import sys


def test_import_is_light():
    code = (
        "import sys, lmwidgets; "
        "heavy = [m for m in ('torch', 'transformers', 'peft', 'anywidget') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api_names_resolve():
    import lmwidgets

    for name in lmwidgets.__all__:
        assert getattr(lmwidgets, name) is not None, name


def test_unknown_attribute():
    import pytest

    import lmwidgets

    with pytest.raises(AttributeError):
        lmwidgets.does_not_exist  # noqa: B018
