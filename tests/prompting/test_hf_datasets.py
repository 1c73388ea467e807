"""Hugging Face ``datasets.Dataset`` objects as ``dataset=`` / ``--dataset`` (and examples):
text columns, Image and Audio columns (undecoded ``{"bytes", "path"}`` cells, decoded audio
dicts), reruns that find the items again, the clear errors for a DatasetDict or a streaming
dataset, and ``datasets`` never imported for other values."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest

import lmwidgets
from lmwidgets.errors import DatasetError

datasets = pytest.importorskip("datasets")

RATE = 16_000


def _png(colour) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 12), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def _wav(freq: float, seconds: float = 0.5) -> bytes:
    import soundfile

    t = np.arange(int(seconds * RATE)) / RATE
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * freq * t), RATE, format="WAV")
    return buffer.getvalue()


@pytest.fixture
def seer(registry):
    return lmwidgets.load_model(
        engine="scripted", name="seer", media=("image",), replies={"red": "red", "*": "blue"}
    )


@pytest.fixture
def ears(registry):
    return lmwidgets.load_model(
        engine="scripted", name="ears", media=("audio",), replies={"*": "a tone"}
    )


def colours():
    """A Dataset with an Image column, as load_dataset gives one (the cells stored as PNG)."""
    names = ["red", "green", "blue"]
    data = {
        "input": [f"Which colour, {c}?" for c in names],
        "image": [{"bytes": _png(c), "path": None} for c in names],
        "expected": names,
    }
    return datasets.Dataset.from_dict(data).cast_column("image", datasets.Image())


def test_a_text_dataset_runs_and_is_scored(registry):
    lmwidgets.load_model(engine="scripted", name="echo", replies={"2+2": "4", "*": "5"})
    data = datasets.Dataset.from_list(
        [{"input": "2+2?", "expected": "4"}, {"input": "2+3?", "expected": "5"}]
    )
    cmp = lmwidgets.prompt("{input}", dataset=data, display=False, cache=False)
    assert [r.input for r in cmp] == ["2+2?", "2+3?"]
    assert cmp.scores == {"zero-shot": 1.0}


def test_an_image_column_gives_each_item_its_own_image_and_reruns(seer):
    data = colours()
    cmp = lmwidgets.prompt("{input}", dataset=data, dataset_name="lmw_ds", display=False)
    assert [r.text for r in cmp] == ["red", "blue", "blue"]
    entries = [r.record["prompt"]["media"][0] for r in cmp]
    assert [e["kind"] for e in entries] == ["image"] * 3
    assert len({e["sha256"] for e in entries}) == 3 and all(e["bytes_sha256"] for e in entries)
    assert cmp[0].record["input"] == {"input": "Which colour, red?", "expected": "red"}
    assert lmwidgets.rerun(cmp, namespace={"lmw_ds": data}).matched


def test_an_audio_column_of_undecoded_cells_is_read_without_torchcodec(ears):
    data = datasets.Dataset.from_dict(
        {
            "input": ["low?", "high?"],
            "audio": [{"bytes": _wav(220), "path": None}, {"bytes": _wav(880, 1.0), "path": None}],
        }
    ).cast_column("audio", datasets.Audio())
    cmp = lmwidgets.prompt("{input}", dataset=data, display=False)
    entries = [r.record["prompt"]["media"][0] for r in cmp]
    assert [(e["kind"], e["rate"], e["duration"]) for e in entries] == [
        ("audio", RATE, 0.5),
        ("audio", RATE, 1.0),
    ]
    assert all(r.error is None for r in cmp)


def test_decoded_audio_dicts_and_paths_are_read(ears, tmp_path):
    path = tmp_path / "tone.wav"
    path.write_bytes(_wav(440))
    t = np.arange(RATE // 4) / RATE
    rows = [
        {"input": "decoded?", "audio": {"array": np.sin(t), "sampling_rate": RATE, "path": None}},
        {"input": "by path?", "audio": {"bytes": None, "path": str(path)}},
    ]
    cmp = lmwidgets.prompt("{input}", dataset=rows, display=False)
    first, second = (r.record["prompt"]["media"][0] for r in cmp)
    assert first["duration"] == 0.25 and first["rate"] == RATE
    assert second["duration"] == 0.5


def test_empty_media_cells_and_dataset_dicts_are_clear_errors(seer):
    data = colours().to_list()
    data[1]["image"] = {"bytes": None, "path": None}
    with pytest.raises(DatasetError, match="item 1 has no image"):
        lmwidgets.prompt("{input}", dataset=data, display=False)
    splits = datasets.DatasetDict({"test": colours()})
    with pytest.raises(DatasetError, match=r"pass one, e\.g\. ds\['test'\]"):
        lmwidgets.prompt("{input}", dataset=splits, display=False)
    streamed = colours().to_iterable_dataset()
    with pytest.raises(DatasetError, match="streaming"):
        lmwidgets.prompt("{input}", dataset=streamed, display=False)
    assert seer.calls == []


def test_examples_from_a_dataset(registry):
    from lmwidgets.core.examples import normalize_examples

    shots = datasets.Dataset.from_list([{"input": "1+1", "output": "2"}])
    assert [(e.input, e.output) for e in normalize_examples(shots)] == [("1+1", "2")]


def test_the_magic_takes_a_hugging_face_dataset(shell, seer):
    shell.user_ns["lmw_hf"] = colours()
    assert shell.run_cell("%%prompt --dataset lmw_hf --out lmw_hf_out\n{input}").success
    assert [r.text for r in shell.user_ns["lmw_hf_out"]] == ["red", "blue", "blue"]


def test_other_values_never_import_datasets():
    code = (
        "import sys; from lmwidgets.core.examples import normalize_dataset;"
        "normalize_dataset([{'input': 'x'}]); print('datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def grown_colours():
    """``colours()`` with a fourth row and a ``when`` column: the first three rows as in
    ``colours()``, the fourth's ``when`` a timestamp past the year 9999, which no Python
    datetime holds: converting that row (``to_list()``, ``data[3]``) raises OverflowError."""
    import pyarrow as pa

    names = ["red", "green", "blue", "white"]
    data = {
        "input": [f"Which colour, {c}?" for c in names],
        "image": [{"bytes": _png(c), "path": None} for c in names],
        "expected": names,
        "when": pa.array([0, 0, 0, 10**12], pa.timestamp("s")),
    }
    return datasets.Dataset.from_dict(data).cast_column("image", datasets.Image())


def test_a_slice_of_a_dataset_reads_only_its_rows(seer):
    data = grown_colours()
    with pytest.raises(OverflowError):
        data.to_list()  # the fourth row cannot be converted
    cmp = lmwidgets.prompt("{input}", dataset=data.select(range(3)), display=False)
    assert [r.text for r in cmp] == ["red", "blue", "blue"]


def test_a_rerun_converts_only_the_rows_of_its_items(seer):
    """The rerun finds each item's image in the dataset by its index, converting that row
    alone: the dataset grew a row that cannot be converted, and the rerun never reads it."""
    cmp = lmwidgets.prompt("{input}", dataset=colours(), dataset_name="lmw_ds", display=False)
    report = lmwidgets.rerun(cmp, namespace={"lmw_ds": grown_colours()})
    assert report.matched


def test_rows_are_read_once_and_one_at_a_time():
    from lmwidgets.core.examples import normalize_dataset, row_of
    from lmwidgets.prompting.media_items import item_value, split_media

    data = grown_colours().select(range(3)).remove_columns(["image"])
    rows, media = split_media(data, None)
    assert rows == data.to_list() and media == []  # normalize_dataset takes the rows read
    assert normalize_dataset(rows) == normalize_dataset(data)
    grown = grown_colours()
    assert row_of(grown, 2) == grown.select(range(3)).to_list()[2]
    assert row_of(grown, 4) is None and row_of(grown, -1) is None
    origin = {"variable": "lmw_ds", "index": 1, "column": "image"}
    assert item_value({"dataset": origin}, {"lmw_ds": grown}) == colours().to_list()[1]["image"]


def test_one_row_of_a_data_frame_or_a_list_is_the_row_all_rows_give():
    import pandas as pd

    from lmwidgets.core.examples import row_of

    frame = pd.DataFrame({"input": ["a", "b"], "n": [1, 2], "x": [0.5, 1.5]})
    rows = frame.to_dict("records")
    assert [row_of(frame, 0), row_of(frame, 1)] == rows and row_of(frame, 2) is None
    assert type(row_of(frame, 1)["n"]) is type(rows[1]["n"]) is int  # not upcast to a float
    assert row_of([{"input": "a"}], 0) == {"input": "a"} and row_of([], 0) is None
    assert row_of("not rows", 0) is None


def test_rows_python_cannot_hold_are_a_clear_error(seer):
    """A row Arrow cannot convert (a timestamp past 9999) is refused with what to do, and the
    kernel keeps working: the same dataset without that column runs."""
    data = grown_colours()
    with pytest.raises(lmwidgets.DatasetError, match="remove_columns") as info:
        lmwidgets.prompt("{input}", dataset=data, display=False)
    assert "OverflowError" in str(info.value)
    cmp = lmwidgets.prompt("{input}", dataset=data.remove_columns(["when"]), display=False)
    assert len(cmp.results) == 4


def test_a_large_dataset_is_told_to_select_rows_not_slice_them():
    """``ds[:100]`` of a Hugging Face Dataset is a dict of columns: the size check's hint says
    ``select``; a list keeps the slice."""
    from lmwidgets.validation import MAX_ROWS, check_dataset_size

    big = datasets.Dataset.from_dict({"input": ["x"] * (MAX_ROWS + 1)})
    with pytest.raises(lmwidgets.InvalidArgumentError, match=r"data\.select\(range\(100\)\)"):
        check_dataset_size(big, confirm=False)
    with pytest.raises(lmwidgets.InvalidArgumentError, match=r"data\[:100\]"):
        check_dataset_size(big.to_list(), confirm=False)
