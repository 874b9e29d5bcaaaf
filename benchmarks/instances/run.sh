#!/usr/bin/env bash
# Flow turns per second with 64 concurrent conversations, side by side in one run:
#   sled on one instance, PostgreSQL on one instance, PostgreSQL on two instances
# (the load alternates each conversation's messages between the two).
#
#   benchmarks/instances/run.sh [ROUNDS] [SECONDS]      (default 2 rounds of 30 s each)
#
# Each round runs the three set-ups in a rotated order, each on fresh state (a new data dir, a
# new database), with `switchboard bench load --conversations 64` as the load (signed-in web
# customers adding data to their line and declining at the confirmation: three flow turns per
# conversation). The PostgreSQL server is the one TEST_POSTGRES_URL names, or a private one
# started here on its own port and folder. A developer tool, not run in CI: results go to
# target/bench-instances/<date>/ and a summary is printed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
rounds="${1:-2}"
seconds="${2:-30}"
conversations=64
secret="bench-widget-secret"

(cd "$root" && cargo build --release --locked -p server --bin switchboard)
bin="$root/target/release/switchboard"
out="$root/target/bench-instances/$(date -u +%Y-%m-%dT%H%M%S)"
mkdir -p "$out"
work=$(mktemp -d /tmp/switchboard-bench-instances.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do kill "$pid" 2>/dev/null || true; done
  if [ -n "${pg_dir:-}" ]; then as_postgres "'$pg_bin/pg_ctl' -D '$pg_dir/data' -m fast stop" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
  pg_dir="$work/postgres"
  mkdir -p "$pg_dir"
  # As root, PostgreSQL runs as its own account, which must reach its folder through $work.
  [ "$(id -u)" = 0 ] && chmod 711 "$work" && chown postgres "$pg_dir"
  pg_port=$(free_port)
  as_postgres "'$pg_bin/initdb' -D '$pg_dir/data' -A trust -U switchboard >'$pg_dir/initdb.log'"
  as_postgres "'$pg_bin/pg_ctl' -D '$pg_dir/data' -l '$pg_dir/server.log' -w \
    -o \"-p $pg_port -k $pg_dir -c listen_addresses=127.0.0.1 -c max_connections=300\" start" >/dev/null
  TEST_POSTGRES_URL="postgres://switchboard@127.0.0.1:$pg_port/postgres"
fi
base_url="${TEST_POSTGRES_URL%/*}"

# One priming start trains the intent model; every instance then starts from a copy of it.
models="$work/models-cache"

start_instance() { # NAME BACKEND [DATABASE_URL] -> sets $started to its base URL
  local name=$1 backend=$2 url=${3:-} port dir
  port=$(free_port)
  dir="$work/$name"
  mkdir -p "$dir"
  [ -d "$models" ] && cp -r "$models" "$dir/models"
  {
    printf '[server]\naddr = "127.0.0.1:%s"\n[models]\nchat_disabled = true\n[widget]\nsecret = "%s"\n' "$port" "$secret"
    printf '[limits]\nrequests_per_ip_per_minute = 0\nmessages_per_conversation_per_minute = 0\nconversations_per_ip_per_hour = 0\n'
    printf '[storage]\nbackend = "%s"\n' "$backend"
    [ -n "$url" ] && printf '[storage.postgres]\nurl = "%s"\npool_size = 16\n' "$url"
  } >"$dir/switchboard.toml"
  "$bin" --config "$dir/switchboard.toml" --data-dir "$dir" serve >"$dir/server.log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 1 600); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && { started="http://127.0.0.1:$port"; return; }
    sleep 0.5
  done
  echo "instance $name did not get ready; see $dir/server.log" >&2
  exit 1
}

stop_instances() {
  for pid in "${pids[@]:-}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  pids=()
}

fresh_database() { # NAME -> prints its URL
  psql "$TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  echo "$base_url/$1"
}

start_instance prime sled
cp -r "$work/prime/models" "$models"
stop_instances

run_setup() { # SETUP ROUND
  local setup=$1 round=$2 urls=()
  case "$setup" in
    sled-1)
      start_instance "r$round-sled" sled
      urls+=(--url "$started") ;;
    postgres-1)
      db=$(fresh_database "bench_r${round}_pg1")
      start_instance "r$round-pg1" postgres "$db"
      urls+=(--url "$started") ;;
    postgres-2)
      db=$(fresh_database "bench_r${round}_pg2")
      start_instance "r$round-pg2a" postgres "$db"
      urls+=(--url "$started")
      start_instance "r$round-pg2b" postgres "$db"
      urls+=(--url "$started") ;;
  esac
  echo "round $round: $setup (load $(cut -d' ' -f1 /proc/loadavg))" >&2
  "$bin" bench load "${urls[@]}" --widget-secret "$secret" --conversations "$conversations" --seconds "$seconds" --json \
    | tail -1 | python3 -c "import json, sys; r = json.load(sys.stdin); r.update(setup='$setup', round=$round); print(json.dumps(r))" \
    >>"$out/results.jsonl"
  stop_instances
}

setups=(sled-1 postgres-1 postgres-2)
for round in $(seq 1 "$rounds"); do
  for i in 0 1 2; do
    run_setup "${setups[$(((i + round - 1) % 3))]}" "$round"
  done
done

python3 - "$out/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
by = {}
for row in rows:
    by.setdefault(row["setup"], []).append(row)
print(f"{'setup':<12} {'turns/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'round trips/turn':>17}  (medians of {len(rows) // max(len(by), 1)} rounds)")
med = {}
for setup in ["sled-1", "postgres-1", "postgres-2"]:
    r = by.get(setup, [])
    if not r:
        continue
    m = {k: statistics.median(x[k] for x in r) for k in ["turns_per_second", "p50_ms", "p95_ms", "round_trips_per_turn"]}
    med[setup] = m
    print(f"{setup:<12} {m['turns_per_second']:>8.1f} {m['p50_ms']:>8.1f} {m['p95_ms']:>8.1f} {m['round_trips_per_turn']:>17.1f}")
if "sled-1" in med and "postgres-1" in med:
    print(f"postgres-1 / sled-1 turns per second: {med['postgres-1']['turns_per_second'] / med['sled-1']['turns_per_second']:.2f}")
PY
echo "results: $out/results.jsonl"
