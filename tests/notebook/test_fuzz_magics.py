"""Property-based fuzzing of ``%%prompt`` and ``%lm`` (issue 17): whatever a user types, a cell
ends with a Comparison, an :class:`LmWidgetsError` or IPython's usage error (unknown flags,
argparse), never another exception, and the kernel's models and earlier results keep working.

Argument lines are generated from every flag with values from the edges of their ranges (and
junk); cell bodies from any characters, lone surrogates and control characters included, mixed
with ``{name}`` fields of notebook variables. They run on scripted models (plain, with an
adapter, taking images) and, fewer of them, on a tiny real transformers model.
"""

from __future__ import annotations

import os
import shlex

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

import lmwidgets
from lmwidgets.notebook.parsers import prompt_parser

PROMPT = prompt_parser()
#: ``LMWIDGETS_FUZZ_SCALE=20`` runs twenty times the examples (a longer hunt for bugs).
SCALE = float(os.environ.get("LMWIDGETS_FUZZ_SCALE", "1"))
SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
SCRIPTED = ("fz", "fz_loud", "fz_eye")
PROTECTED = {*SCRIPTED, "tiny", "lmw_fz_before"}

#: Files a prompt may name (made once per session by :func:`_files`).
FILES = {
    "png": "/tmp/lmw-fuzz/junk.png",
    "text": "/tmp/lmw-fuzz/notes.txt",
    "dir": "/tmp/lmw-fuzz",
}

# -- values ----------------------------------------------------------------------------------
#: Any character: lone surrogates and control characters included.
ANY_CHAR = st.characters(exclude_categories=())
#: What ends a line for IPython (nobody can type these inside one line of a cell).
LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
IN_LINE = st.characters(exclude_categories=(), exclude_characters=LINE_BREAKS)
junk = st.text(IN_LINE, max_size=12)
numbers = st.one_of(
    st.integers(-3, 80),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 10**7, 10**20, -(2**63) - 1]),
).map(str)
floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-0", "0.5", "1", "0", "1e-320"]),
)
models = st.sampled_from([*SCRIPTED, "nobody", "base", ""])
variables = st.sampled_from(
    [
        "lmw_fz_pairs",
        "lmw_fz_rationale",
        "lmw_fz_data",
        "lmw_fz_img",
        "lmw_fz_num",
        "lmw_fz_text",
        "lmw_fz_before",
        "lmw_fz_missing",
        "lmw_fz_df",
        "lmw_fz_weird",
        "lmw_fz_triples",
        "lmw_fz_array",
        "lmw_fz_broken",
        "/no/such/file.png",
        "http://127.0.0.1:9/x.png",
        FILES["png"],
        FILES["text"],
        FILES["dir"],
    ]
)
strategy_names = st.sampled_from(["zero-shot", "few-shot", "cot", "self-consistency", "no-image"])
adapter_names = st.sampled_from(["base", "loud", "none", "__base__", "nobody", "LOUD"])
outs = st.sampled_from(
    [
        "lmw_fz_out",
        "lmw_fz_prev",
        "lmw_fz_num",
        "print",
        "len",
        "1bad-name",
        "for",
        "match",
        "_",
        "_3",
        "In",
        "__lmw__",
        "lmw fz",
        "",
    ]
)


def listed(values):
    return st.lists(st.one_of(values, junk), max_size=4).map(",".join)


regions = st.one_of(
    st.sampled_from(["1,1,10,10", "0,0,32,24", "2:1,1,5,5", "1:0,0,1,1", "5,5,1,1", "x"]),
    st.lists(numbers, min_size=1, max_size=5).map(",".join),
)
PROMPT_VALUES = {
    "--model": st.one_of(models, junk),
    "-m": models,
    "--models": listed(models),
    "--system": st.one_of(junk, st.just("Be brief, {lmw_fz_text}.")),
    "--max-new-tokens": numbers,
    "-n": numbers,
    "--temperature": floats,
    "-t": floats,
    "--top-p": floats,
    "--seed": numbers,
    "--logprobs": numbers,
    "--out": st.one_of(outs, junk),
    "-o": outs,
    "--strategy": st.one_of(strategy_names, junk),
    "--compare": listed(strategy_names),
    "-c": listed(strategy_names),
    "--examples": st.one_of(variables, junk),
    "--shots": numbers,
    "-k": numbers,
    "--samples": numbers,
    "--dataset": st.one_of(variables, junk),
    "--cot-instruction": junk,
    "--batch-size": numbers,
    "--adapter": st.one_of(adapter_names, junk),
    "--adapters": listed(adapter_names),
    "--image": st.one_of(variables, junk),
    "-i": variables,
    "--region": st.one_of(regions, junk),
    "--region-mode": st.sampled_from(["box", "crop", "blur", ""]),
}
with_value = st.sampled_from(sorted(PROMPT_VALUES)).flatmap(
    lambda name: PROMPT_VALUES[name].map(lambda value: [name, value])
)
bare = st.sampled_from(["--yes", "-y", "--force-out"]).map(lambda name: [name])
wrong = st.one_of(st.sampled_from(["--help", "--bogus", "-", "--out"]), junk).map(lambda w: [w])
# Mostly flags with values, sometimes a usage error (hypothesis favours the ends of a range).
option = st.integers(0, 10).flatmap(lambda i: wrong if i == 5 else bare if i == 6 else with_value)
tokens = st.lists(option, max_size=5).map(lambda opts: shlex.join(t for o in opts for t in o))
# Mostly well-formed lines (quoted tokens), sometimes raw text (unbalanced quotes...).
prompt_lines = st.integers(0, 10).flatmap(
    lambda i: st.text(IN_LINE, max_size=30) if i == 5 else tokens
)
FIELDS = [
    "{lmw_fz_text}",
    "{lmw_fz_num}",
    "{lmw_fz_num:>{x}}",
    "{lmw_fz_num:%}",
    "{lmw_fz_pairs[0]}",
    "{lmw_fz_pairs[9]}",
    "{lmw_fz_img.size}",
    "{lmw_fz_img._im}",
    "{lmw_fz_data[1]['input']!r}",
    "{lmw_fz_broken}",
    "{lmw_fz_broken!r}",
    "{lmw_fz_broken.attribute}",
    "{img}",
    "{input}",
    "{{",
    "}}",
    "{",
    "\x00",
    "\udcff",
    "\ud800",
    "\r\n",
    "\x1b[31m",
    "What is 2 + 2?",
    "word " * 1500,  # longer than the tiny models' context
]
bodies = st.lists(
    st.one_of(st.text(ANY_CHAR, max_size=20), st.sampled_from(FIELDS)), min_size=1, max_size=6
)
bodies = bodies.map(lambda parts: "".join(parts).strip("\n") or "What is 2 + 2?")


class Broken:
    """A notebook object whose conversions to text fail (a user's class with a buggy
    ``__repr__``/``__str__``/``__format__``)."""

    def _fail(self, *args):
        raise RuntimeError("broken")

    __str__ = __format__ = _fail

    def __repr__(self):
        import inspect

        if any("hypothesis" in frame.filename for frame in inspect.stack()[1:3]):
            return "Broken()"
        raise RuntimeError("broken")


# -- the kernel --------------------------------------------------------------------------------
@pytest.fixture
def kernel(shell):
    """Three scripted models and the notebook variables the generated lines refer to."""
    import numpy as np
    import pandas as pd
    from PIL import Image

    os.makedirs(FILES["dir"], exist_ok=True)
    with open(FILES["png"], "wb") as junk:
        junk.write(b"\x89PNG\r\n\x1a\nnot really")
    with open(FILES["text"], "w", encoding="utf-8") as text:
        text.write("not an image")

    lmwidgets.load_model(engine="scripted", name="fz", replies={"*": "The answer is: 4"})
    lmwidgets.load_model(engine="scripted", name="fz_loud", adapters={"loud": str.upper})
    lmwidgets.load_model(engine="scripted", name="fz_eye", media=("image",), max_media=2)
    shell.user_ns.update(
        lmw_fz_pairs=[("2+2", "4"), ("3+3", "6")],
        lmw_fz_rationale=[{"input": "1+1", "output": "2", "rationale": "one and one"}],
        lmw_fz_data=[{"input": "2+2", "expected": "4"}, {"input": "\udcff\x00?", "expected": 5}],
        lmw_fz_img=Image.new("RGB", (32, 24), "red"),
        lmw_fz_num=7,
        lmw_fz_text="bad \x00 text \udcff",
        lmw_fz_df=pd.DataFrame({"input": ["2+2", None], "expected": [float("nan"), 3]}),
        lmw_fz_weird=[{"input": {"nested": 1}, "expected": [1, 2]}, {1: "x", "input": b"\xff"}],
        lmw_fz_triples=[("a", "b", None), ["x", 1, 2.5]],
        lmw_fz_array=np.zeros((4, 5, 3), dtype=np.float64) + np.nan,
        lmw_fz_broken=Broken(),
    )
    assert shell.run_cell("%%prompt --model fz --out lmw_fz_before\nWhat is 2 + 2?").success
    assert shell.run_cell("%%prompt --model fz --out lmw_fz_prev\nAgain").success
    before = dict(shell.user_ns)
    yield shell
    # `--out print --force-out` and the like rebind names of the shell later tests share.
    for name in set(shell.user_ns) - set(before):
        del shell.user_ns[name]
    shell.user_ns.update(before)


def _utf8(text: str) -> None:
    """What a kernel sends must be valid UTF-8 (a lone surrogate breaks the message)."""
    text.encode("utf-8")


def check_cell(shell, code: str) -> None:
    """Run ``code``; assert the issue's properties."""
    before = shell.user_ns["lmw_fz_before"]
    models = set(lmwidgets.REGISTRY.names())
    result = shell.run_cell(code)
    error = result.error_before_exec or result.error_in_exec
    if error is not None:
        assert isinstance(error, (lmwidgets.LmWidgetsError, UsageError)), (code, repr(error))
        _utf8(str(error))
    # The short error display is still installed (IPython drops a handler that fails).
    assert shell.custom_exceptions == (
        lmwidgets.LmWidgetsError,
        lmwidgets.errors.GenerationInterrupted,
    ), code
    assert shell.user_ns["lmw_fz_before"] is before and before[0].text == "The answer is: 4"
    protected = {name for name in models if name in PROTECTED}
    assert protected <= set(lmwidgets.REGISTRY.names()), code
    for value in list(shell.user_ns.values()):
        if isinstance(value, lmwidgets.Comparison):
            for item in value:
                _utf8(item.text + item.prompt + " ".join(value.notes))
            value.to_json()


def check_prompt(shell, line: str, body: str) -> None:
    shell.user_ns.pop("lmw_fz_out", None)
    code = f"%%prompt {line}\n{body}"
    check_cell(shell, code)
    try:
        args = PROMPT.parse_args(shlex.split(line))
    except (ValueError, UsageError):
        return
    if args.out == "lmw_fz_out" and not args.help and shell.user_ns.get("lmw_fz_out") is not None:
        assert isinstance(shell.user_ns["lmw_fz_out"], lmwidgets.Comparison)


def still_working(shell, names) -> None:
    """Every model answers and the earlier result is intact after the fuzzing."""
    for name in names:
        assert shell.run_cell(f"%%prompt --model {name} --out lmw_fz_after -n 3\nhi").success
        assert isinstance(shell.user_ns["lmw_fz_after"], lmwidgets.Comparison)
    assert shell.run_cell("%lm models").success
    assert shell.user_ns["lmw_fz_before"][0].text == "The answer is: 4"


# -- %%prompt ------------------------------------------------------------------------------------
@pytest.mark.parametrize("current", SCRIPTED)
def test_prompt_magic_on_scripted_models(kernel, current, capsys):
    lmwidgets.REGISTRY.current = current

    @settings(max_examples=int(150 * SCALE), **SETTINGS)
    @given(line=prompt_lines, body=bodies)
    def fuzz(line, body):
        check_prompt(kernel, line, body)

    fuzz()
    capsys.readouterr()
    still_working(kernel, SCRIPTED)


def test_prompt_magic_on_a_tiny_transformers_model(kernel, tiny, tiny_dir, tmp_path, capsys):
    """Fewer examples: a real tokenizer, chat template and LoRA adapter (called ``loud``, like
    the scripted one), with small answer budgets."""
    from tiny_models import build_lora

    lora = build_lora(tiny_dir, tmp_path / "lora", seed=1)
    assert kernel.run_cell(f"%lm adapter load {lora} --as loud --model tiny").success
    lmwidgets.REGISTRY.current = "tiny"
    small = st.sampled_from(["1", "2", "0", "-1", "2**63", "9223372036854775808", "x"])

    @settings(max_examples=int(25 * SCALE), **SETTINGS)
    @given(
        extra=st.lists(option, max_size=3).map(lambda o: shlex.join(t for x in o for t in x)),
        budget=small,
        body=bodies,
    )
    def fuzz(extra, budget, body):
        # The answer budget comes last, so the tiny model never writes more than 2 tokens.
        check_prompt(kernel, f"--model tiny {extra} -n {shlex.quote(budget)}", body)

    fuzz()
    capsys.readouterr()
    still_working(kernel, ["tiny", "fz"])


def test_prompt_magic_on_a_tiny_vision_language_model(kernel, vlm, capsys):
    """A few examples on a real processor and chat template with images (tiny LLaVA)."""
    lmwidgets.REGISTRY.current = "vlm"
    images = st.lists(
        st.sampled_from(["lmw_fz_img", "lmw_fz_array", FILES["png"], "lmw_fz_num"]), max_size=4
    ).map(lambda names: shlex.join(t for name in names for t in ("--image", name)))

    @settings(max_examples=int(12 * SCALE), **SETTINGS)
    @given(
        extra=st.lists(option, max_size=2).map(lambda o: shlex.join(t for x in o for t in x)),
        images=images,
        body=bodies,
    )
    def fuzz(extra, images, body):
        check_prompt(kernel, f"--model vlm {images} {extra} -n 1", body)

    fuzz()
    capsys.readouterr()
    still_working(kernel, ["vlm", "fz_eye"])


# -- %lm -----------------------------------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    """Paths %lm may be given: a replies file, a text file, a pickle file, a directory."""
    replies = tmp_path / "replies.json"
    replies.write_text('{"*": "scripted"}', encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not json", encoding="utf-8")
    (tmp_path / "weights.bin").write_bytes(b"\x80\x04")
    (tmp_path / "lora").mkdir()
    return {
        "json": str(replies),
        "text": str(tmp_path / "notes.txt"),
        "pickle": str(tmp_path / "weights.bin"),
        "dir": str(tmp_path / "lora"),
        "missing": str(tmp_path / "missing"),
    }


def lm_lines(files):
    """``%lm`` lines that never reach the network or load the default model: transformers
    sources are local paths, servers are a closed local port."""
    paths = st.sampled_from(sorted(files.values()))
    new_names = st.sampled_from(["fzx", "fzx_2", "fz", "tiny", "", "a b", "a,b", " x"])
    load_flags = st.lists(
        st.one_of(
            st.tuples(st.just("--as"), st.one_of(new_names, junk)),
            st.tuples(st.just("--device"), st.sampled_from(["cpu", "cuda", "cuda:9", "tpu", ""])),
            st.tuples(st.just("--dtype"), st.sampled_from(["float32", "int3", "auto", ""])),
            st.tuples(st.just("--max-images"), numbers),
            st.tuples(st.just("--quantize"), st.sampled_from(["4bit", "8bit", "3bit"])),
            st.tuples(st.just("--cpu-kernels"), st.sampled_from(["auto", "plain", "fast"])),
            st.sampled_from(
                [("--allow-pickle",), ("--trust-remote-code",), ("--no-prepack",), ("--compile",)]
            ),
        ),
        max_size=3,
    ).map(lambda flags: [t for f in flags for t in f])
    scripted = st.tuples(
        st.just(["load", "--engine", "scripted"]),
        st.lists(st.one_of(paths, junk), max_size=1),
        load_flags,
    )
    transformers = st.tuples(st.just(["load"]), paths.map(lambda p: [p]), load_flags)
    connect = st.tuples(
        st.just(["connect"]),
        st.sampled_from(["http://127.0.0.1:9", "notaurl", "ftp://x", "http://"]).map(lambda u: [u]),
        st.lists(
            st.one_of(
                st.tuples(st.just("--timeout"), floats),
                st.tuples(st.just("--as"), st.one_of(new_names, junk)),
                st.tuples(st.just("--model"), junk),
                st.tuples(st.just("--api-key-env"), st.one_of(junk, st.just("LMW_FZ_NO_KEY"))),
            ),
            max_size=2,
        ).map(lambda flags: [t for f in flags for t in f]),
    )
    others = st.tuples(
        st.sampled_from(
            [
                ["models"],
                ["rerun"],
                ["rerun", "--show"],
                ["unload"],
                ["adapter"],
                ["adapter", "list"],
                ["adapter", "load"],
                ["adapter", "use"],
                ["adapter", "unload"],
                ["adapter", "load", "--scale", "inf"],
            ]
        ),
        st.lists(
            st.one_of(
                paths,
                variables,
                adapter_names,
                junk.filter(lambda name: name not in PROTECTED),
                st.sampled_from(["fzx", "--model", "fz_loud", "--as", "--scale", "nan", "-h"]),
            ),
            max_size=3,
        ),
        st.just([]),
    )
    structured = st.one_of(scripted, transformers, connect, others).map(
        lambda parts: shlex.join(parts[0] + parts[1] + parts[2])
    )
    return st.one_of(structured, structured, structured, st.text(IN_LINE, max_size=30))


def test_lm_magic(kernel, files, tiny_dir, capsys):
    files["tiny"] = str(tiny_dir)  # a real model, loaded with random options (a second copy)

    @settings(max_examples=int(150 * SCALE), **SETTINGS)
    @given(line=lm_lines(files))
    def fuzz(line):
        tokens = line.split()
        # `%lm unload` of the fixture models would test nothing but our own setup.
        if tokens[:1] == ["unload"] and set(tokens[1:]) & PROTECTED:
            return
        check_cell(kernel, f"%lm {line}")

    fuzz()
    capsys.readouterr()
    still_working(kernel, SCRIPTED)
