#!/usr/bin/env bash
# Creates evals/baselines/.venv (git-ignored) with the two peers: sentence-transformers (PyTorch,
# CPU) and llama-cpp-python, compiled here. Idempotent: does nothing when both import.
#
# llama.cpp is built for this CPU (GGML_NATIVE) with its AMX code path off: on the reference
# machine the AMX path crashed. The PyTorch wheels pull in several GB of CUDA libraries (unused);
# the llama.cpp build takes about ten minutes on 2 cores.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv"
python="${PYTHON:-python3}"

if [[ -x "$venv/bin/python" ]] && "$venv/bin/python" -c 'import sentence_transformers, llama_cpp' 2>/dev/null; then
  exit 0
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$here/requirements-embed.txt"
CMAKE_ARGS="-DGGML_NATIVE=ON -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_BLAS=OFF -DLLAMA_CURL=OFF" \
  FORCE_CMAKE=1 CMAKE_BUILD_PARALLEL_LEVEL=2 \
  "$venv/bin/python" -m pip install --quiet --no-binary llama-cpp-python --no-cache-dir -r "$here/requirements-llama.txt"
"$venv/bin/python" -c 'import sentence_transformers, llama_cpp; print("peers:", "sentence-transformers", sentence_transformers.__version__, "llama-cpp-python", llama_cpp.__version__)'
