#!/usr/bin/env bash
# The README's "Using it by hand" section, run as written with real values: a devnet, a deploy,
# three nodes that stake and start, two data owners and a requester, one mpc.mean task from
# posting to its attested result. tests/test_by_hand.py runs it on every CI run.
#
#   bash scripts/by_hand.sh [WORKDIR]      # HOME is WORKDIR (a fresh temp dir by default)
#
# DEV ONLY: the keys come from the devnet's public dev accounts.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${1:-$(mktemp -d)}"
mkdir -p "$WORK"
export HOME="$WORK"                 # ~/.dnode, ~/n1, ~/req, ... all land here
export DNODE_PASSWORD="dev-only"    # keystore password (never a real one)
PORT="${DNODE_BY_HAND_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}"
export DNODE_RPC_URL="http://127.0.0.1:$PORT"
unset DNODE_HOME DNODE_MANIFEST DNODE_ACCOUNT DNODE_PASSWORD_FILE
cd "$WORK"
PATH="$REPO/.venv/bin:$PATH"
. "$REPO/.venv/bin/activate"
say() { printf '\n$ %s\n' "$*" >&2; }
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "dnode chain --port $PORT        # terminal 1"
dnode chain --port "$PORT" > chain.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "DEV ONLY" chain.log 2>/dev/null && break; sleep 0.2; done
sleep 0.5
mapfile -t KEYS < <(grep -oE '\(([0-9]+)\) 0x[0-9a-fA-F]{40}  0x[0-9a-fA-F]{64}' chain.log | awk '{print $3}')
[ "${#KEYS[@]}" -ge 7 ] || { echo "by_hand: no dev keys in chain.log" >&2; cat chain.log >&2; exit 1; }

say "dnode deploy --dev-account 0 --challenge-period 60"
dnode deploy --dev-account 0 --challenge-period 60

BOOT=""
for n in 1 2 3; do
  echo "${KEYS[$n]}" > "key$n.txt"
  say "dnode --home ~/n$n account import --private-key-file key$n.txt"
  dnode --home ~/n$n account import --private-key-file "key$n.txt"
  say "dnode --home ~/n$n --manifest ~/.dnode/deployment.json stake --amount 2ether"
  dnode --home ~/n$n --manifest ~/.dnode/deployment.json stake --amount 2ether
  say "dnode --home ~/n$n --manifest ~/.dnode/deployment.json start ${BOOT:+--bootstrap $BOOT}"
  dnode --home ~/n$n --manifest ~/.dnode/deployment.json start ${BOOT:+--bootstrap "$BOOT"} \
    > "n$n.out" 2> "n$n.log" &
  pids+=($!)
  for _ in $(seq 300); do [ -s "n$n.out" ] && break; sleep 0.2; done
  [ -s "n$n.out" ] || { echo "by_hand: node $n did not start" >&2; tail "n$n.log" >&2; exit 1; }
  # it prints its multiaddr (one JSON line); the first one is everyone's bootstrap peer
  [ -n "$BOOT" ] || BOOT="$(python3 -c 'import json,sys;print(json.load(sys.stdin)["addrs"][0])' < n1.out)"
done

owner() {  # import dev key $2 as ~/$1, print its address
  echo "${KEYS[$2]}" > "key-$1.txt"
  dnode --home ~/"$1" --json account import --private-key-file "key-$1.txt" \
    | python3 -c 'import json,sys;print(json.load(sys.stdin)["address"])'
}
A="$(owner a 4)"; B="$(owner b 5)"; owner req 6 > /dev/null
printf 'value\n10\n20\n30\n' > a-values.csv
printf 'value\n40\n50\n' > b-values.csv

say "dnode --home ~/req task post --program mpc.mean --owner $A --owner $B --reward 0.3ether --bootstrap $BOOT"
TASK="$(dnode --home ~/req --json task post --program mpc.mean --owner "$A" --owner "$B" \
  --reward 0.3ether --bootstrap "$BOOT" | python3 -c 'import json,sys;print(json.load(sys.stdin)["task_id"])')"
say "dnode --home ~/a task contribute $TASK --inputs a-values.csv --bootstrap …"
dnode --home ~/a task contribute "$TASK" --inputs a-values.csv --bootstrap "$BOOT"
say "dnode --home ~/b task contribute $TASK --inputs b-values.csv --bootstrap …"
dnode --home ~/b task contribute "$TASK" --inputs b-values.csv --bootstrap "$BOOT"
say "dnode task status $TASK"
dnode task status "$TASK"
say "dnode task result $TASK --wait 300"
dnode task result "$TASK" --wait 300
dnode --json task result "$TASK" > result.json
python3 - "$WORK/result.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["value"] == "30", r  # (10 + 20 + 30 + 40 + 50) / 5
print(f"by_hand: task {r['task_id']} mean {r['value']} ({r['status']})")
PY
