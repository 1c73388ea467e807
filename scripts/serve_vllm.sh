#!/usr/bin/env bash
# Serve a local model directory with vLLM's OpenAI-compatible server on 127.0.0.1 (CPU).
#
# Usage:
#   scripts/serve_vllm.sh [--background] MODEL_DIR [PORT] [NAME] [-- | --vllm-flag ...]
#   scripts/serve_vllm.sh --stop [PORT]
#
#   MODEL_DIR  a transformers model directory (config.json, tokenizer, safetensors)
#   PORT       default 8000
#   NAME       the model name clients send ("model": NAME); default: basename of MODEL_DIR
#   Anything from the first argument that starts with '-' on (or after '--') goes to vLLM as is;
#   it comes after the defaults below, so e.g. '--max-model-len 4096' overrides them.
#
# The server waits until GET /health answers (VLLM_READY_TIMEOUT seconds, default 300), then prints
# its base URL on stdout. In the foreground it then runs until interrupted. With --background it
# keeps running detached, with a pid file and a log (VLLM_PID_FILE, VLLM_LOG_FILE; defaults under
# $VLLM_VENV/run/), and the script exits 0 once it is ready; '--stop PORT' ends it.
#
# Environment:
#   VLLM_VENV                         the virtualenv made by scripts/setup_vllm.sh (default <repo>/.venv-vllm)
#   VLLM_CPU_KVCACHE_SPACE            GiB of KV cache (default 1)
#   VLLM_ALLOW_RUNTIME_LORA_UPDATING  True to allow POST /v1/load_lora_adapter (default: not allowed)
#   VLLM_READY_TIMEOUT                seconds to wait for /health (default 300)
#   VLLM_SKIP_MODEL_CHECK             1 to skip the check for a missing tied embedding tensor
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
HOST=127.0.0.1
RUN_DIR="$VENV/run"

die() { echo "serve_vllm: error: $*" >&2; exit 1; }
log() { echo "serve_vllm: $*" >&2; }

pid_file_for() { echo "${VLLM_PID_FILE:-$RUN_DIR/vllm-$1.pid}"; }
log_file_for() { echo "${VLLM_LOG_FILE:-$RUN_DIR/vllm-$1.log}"; }

# Stop the process group whose leader is in the pid file (the server and its engine process).
stop_server() {
    local pid_file pid
    pid_file="$(pid_file_for "$1")"
    [[ -f "$pid_file" ]] || die "no pid file $pid_file: nothing started on port $1 by this script"
    pid="$(cat "$pid_file")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then
            log "still running after 30 s: killing"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped server pid $pid (port $1)"
    else
        log "server pid $pid (port $1) was not running"
    fi
    rm -f "$pid_file"
}

# ---- arguments --------------------------------------------------------------------------------
BACKGROUND=0
POSITIONAL=()
EXTRA=()
if [[ "${1:-}" == "--stop" ]]; then
    stop_server "${2:-8000}"
    exit 0
fi
while [[ $# -gt 0 ]]; do
    case "$1" in
        --background) BACKGROUND=1; shift ;;
        -h|--help) sed -n '2,26p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; EXTRA+=("$@"); break ;;
        -*) EXTRA+=("$@"); break ;;
        *)
            if [[ ${#POSITIONAL[@]} -lt 3 ]]; then POSITIONAL+=("$1"); shift
            else EXTRA+=("$@"); break; fi ;;
    esac
done
# '--background' may also come among the pass-through arguments.
if [[ ${#EXTRA[@]} -gt 0 ]]; then
    REST=()
    for a in "${EXTRA[@]}"; do
        if [[ "$a" == "--background" ]]; then BACKGROUND=1; else REST+=("$a"); fi
    done
    EXTRA=("${REST[@]+"${REST[@]}"}")
fi
[[ ${#POSITIONAL[@]} -ge 1 ]] || die "usage: $0 [--background] MODEL_DIR [PORT] [NAME] [vllm flags...]"
MODEL_DIR="${POSITIONAL[0]}"
PORT="${POSITIONAL[1]:-8000}"
MODEL_DIR="$(cd "$MODEL_DIR" 2>/dev/null && pwd)" || die "model directory not found: ${POSITIONAL[0]}"
NAME="${POSITIONAL[2]:-$(basename "$MODEL_DIR")}"
[[ "$PORT" =~ ^[0-9]+$ ]] || die "port must be a number, got '$PORT'"

# ---- checks -----------------------------------------------------------------------------------
PY="$VENV/bin/python"
[[ -x "$PY" && -f "$VENV/.lmwidgets-vllm-stamp" ]] \
    || die "no vLLM virtualenv at $VENV: run scripts/setup_vllm.sh first"
command -v curl >/dev/null || die "curl is needed to poll /health"
[[ -f "$MODEL_DIR/config.json" ]] || die "$MODEL_DIR has no config.json (not a transformers model directory)"
if curl -s -o /dev/null --max-time 2 "http://$HOST:$PORT/"; then
    die "something already answers on $HOST:$PORT (stop it, or pick another port)"
fi

# A tied-embedding model whose safetensors hold only 'lm_head.weight' (and not
# 'model.embed_tokens.weight') loads in vLLM without error but generates garbage: refuse it.
if [[ "${VLLM_SKIP_MODEL_CHECK:-0}" != "1" ]]; then
    "$PY" - "$MODEL_DIR" <<'EOF' || die "model check failed (set VLLM_SKIP_MODEL_CHECK=1 to skip it)"
import glob, json, os, struct, sys
directory = sys.argv[1]
names = set()
for path in glob.glob(os.path.join(directory, "*.safetensors")):
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        names.update(json.loads(handle.read(size)))
embeds = [n for n in names if n.endswith("embed_tokens.weight")]
if names and not embeds and any(n.endswith("lm_head.weight") for n in names):
    sys.exit(f"serve_vllm: error: {directory} stores the tied embedding only as 'lm_head.weight'; "
             "vLLM needs 'model.embed_tokens.weight' (the name save_pretrained writes) and would "
             "generate garbage. Re-save the weights with that tensor name.")
EOF
fi

# ---- start ------------------------------------------------------------------------------------
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-1}"
CMD=("$PY" -m vllm.entrypoints.openai.api_server
     --model "$MODEL_DIR" --served-model-name "$NAME"
     --host "$HOST" --port "$PORT"
     --max-model-len 2048 --dtype float32
     --enable-lora --max-lora-rank 16
     "${EXTRA[@]+"${EXTRA[@]}"}")
URL="http://$HOST:$PORT"
TIMEOUT="${VLLM_READY_TIMEOUT:-300}"

if [[ "$BACKGROUND" == "1" ]]; then
    mkdir -p "$RUN_DIR"
    PID_FILE="$(pid_file_for "$PORT")"
    LOG_FILE="$(log_file_for "$PORT")"
    mkdir -p "$(dirname "$PID_FILE")" "$(dirname "$LOG_FILE")"
    if [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        die "a server started by this script still runs (pid $(cat "$PID_FILE"), $PID_FILE)"
    fi
    # setsid: its own process group, so '--stop' ends the engine process too.
    setsid "${CMD[@]}" >"$LOG_FILE" 2>&1 < /dev/null &
    SERVER_PID=$!
    echo "$SERVER_PID" > "$PID_FILE"
    log "started pid $SERVER_PID serving '$NAME' from $MODEL_DIR; log: $LOG_FILE"
else
    LOG_FILE=""
    "${CMD[@]}" &
    SERVER_PID=$!
    trap 'kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null; exit 130' INT TERM
fi

START=$SECONDS
until curl -sf -o /dev/null --max-time 2 "$URL/health"; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        [[ -n "$LOG_FILE" ]] && tail -n 30 "$LOG_FILE" >&2
        [[ -n "$LOG_FILE" ]] && rm -f "$PID_FILE"
        die "the server exited before it was ready"
    fi
    if (( SECONDS - START >= TIMEOUT )); then
        if [[ "$BACKGROUND" == "1" ]]; then
            tail -n 30 "$LOG_FILE" >&2
            stop_server "$PORT"
        else
            kill -TERM "$SERVER_PID" 2>/dev/null || true
        fi
        die "not ready after ${TIMEOUT} s (VLLM_READY_TIMEOUT)"
    fi
    sleep 2
done
log "ready after $((SECONDS - START)) s: model '$NAME' at $URL/v1"
echo "$URL"

if [[ "$BACKGROUND" != "1" ]]; then
    wait "$SERVER_PID"
fi
