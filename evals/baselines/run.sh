#!/usr/bin/env bash
# Switchboard against its peers on this machine, interleaved, with medians and ratios.
#
#   evals/baselines/run.sh [ROUNDS]        (default 3 rounds; a developer tool, not run in CI)
#
# Each round runs, alternating which goes first:
#   - embeddings: sentence-transformers (PyTorch CPU, 2 threads) vs `switchboard bench embed`,
#     the first 2,000 sentences of CLINC150 `val`, batch 32 (throughput and peak RSS);
#   - generation: llama.cpp (llama-cpp-python, 2 threads) vs `switchboard bench generate`,
#     the shipped SmolLM2 GGUF, the 100-token ChatML prompt in prompt.txt, greedy, 128 new tokens.
# Also each round: both peers with 1 thread, and Switchboard with its weights re-quantized to Q8_0
# on the int8 kernel (`measure generate --format q8_0`, the default until 2026-11-26) against the
# default (the file's Q4_1 blocks on the int4 kernel).
# Each measurement is its own process. Then Switchboard alone: `switchboard bench turns`
# (whole engine turns with both models loaded, and intent prediction, batch of one).
# The load average is recorded before every measurement: the machine is shared.
#
# Needs python3 (3.9+) with venv and the package registry; setup.sh builds the peers once into
# evals/baselines/.venv (git-ignored). Results go to target/baselines/<date>/ and a summary is
# printed (summarise.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
rounds="${1:-3}"

"$here/setup.sh"
python="$here/.venv/bin/python"

(cd "$root" && cargo build --release --locked -p server --bin switchboard)
(cd "$root" && cargo build --release --locked -p inference --example measure)
bin="$root/target/release/switchboard"
measure_bin="$root/target/release/examples/measure"

out="$root/target/baselines/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
data_dir="$out/data"
models_dir="${SWITCHBOARD_MODELS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/models}"
"$bin" models fetch --models-dir "$models_dir" >/dev/null
encoder_dir="$models_dir/all-minilm-l6-v2"
gguf="$models_dir/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"
clinc="${CLINC150:-$root/data/clinc150/clinc150_dev.json}"
sentences="$out/sentences.txt"
"$python" - "$clinc" "$sentences" <<'PY'
import json, sys
data = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2], "w", encoding="utf-8") as file:
    for text, _label in data["val"][:2000]:
        file.write(text.replace("\n", " ") + "\n")
PY
prompt="$here/prompt.txt"
export SWITCHBOARD_MODELS_DIR="$models_dir"

# Appends one JSON line {"kind", "engine", "round", "load", "result"} to results.jsonl.
measure() {
  local kind="$1" engine="$2" round="$3"; shift 3
  local load result
  load="$(cut -d' ' -f1 /proc/loadavg)"
  result="$("$@" | tail -n 1)"
  printf '{"kind": "%s", "engine": "%s", "round": %s, "load": %s, "result": %s}\n' \
    "$kind" "$engine" "$round" "$load" "$result" | tee -a "$out/results.jsonl"
}
peer_embed() { measure embed peer "$1" "$python" "$here/peer_embed.py" --model-dir "$encoder_dir" --sentences "$sentences" --batch 32 --threads 2; }
ours_embed() { measure embed switchboard "$1" "$bin" --data-dir "$data_dir" bench embed --sentences "$sentences" --batch 32 --json; }
peer_generate() { measure generate peer "$1" "$python" "$here/peer_generate.py" --gguf "$gguf" --prompt-file "$prompt" --max-tokens 128 --threads 2; }
ours_generate() { measure generate switchboard "$1" "$bin" --data-dir "$data_dir" bench generate --prompt-file "$prompt" --max-tokens 128 --json; }
# Extra rows: the peers with one thread (Switchboard decodes on one thread; with two, the peers'
# OpenMP threads spin-wait on each other when the machine is loaded, and collapse), and Switchboard's
# weights re-quantized to Q8_0 on the int8 kernel instead of the default int4 one, to check the default.
peer_embed_1t() { measure embed peer-1-thread "$1" "$python" "$here/peer_embed.py" --model-dir "$encoder_dir" --sentences "$sentences" --batch 32 --threads 1; }
peer_generate_1t() { measure generate peer-1-thread "$1" "$python" "$here/peer_generate.py" --gguf "$gguf" --prompt-file "$prompt" --max-tokens 128 --threads 1; }
ours_generate_q8() { measure generate switchboard-q8_0 "$1" "$measure_bin" generate --models-dir "$models_dir" --format q8_0 --prompt-file "$prompt" --max-tokens 128; }

for round in $(seq 1 "$rounds"); do
  if (( round % 2 == 1 )); then
    peer_embed "$round"; ours_embed "$round"; peer_generate "$round"; ours_generate "$round"
    peer_generate_1t "$round"; ours_generate_q8 "$round"; peer_embed_1t "$round"
  else
    ours_embed "$round"; peer_embed "$round"; ours_generate "$round"; peer_generate "$round"
    ours_generate_q8 "$round"; peer_generate_1t "$round"; peer_embed_1t "$round"
  fi
done
measure turns switchboard 1 "$bin" --data-dir "$data_dir" bench turns --rounds 3 --json

"$python" "$here/summarise.py" "$out/results.jsonl" | tee "$out/summary.txt"
echo "results: $out"
