#!/usr/bin/env bash
# The main job, from a clean clone, as root: set this machine up, start two sandbox hosts (network namespaces with
# their own sshd, PID and mount namespaces), run a container with a network service on host 1, and migrate it live
# to host 2 while a client outside both hosts keeps talking to it. Prints the downtime that client saw. Cleans up.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
bash scripts/setup.sh

export FERRY_SANDBOX_DIR=/run/ferry-sandbox-demo FERRY_SANDBOX_NAME=ferrydemo
SANDBOX=(bash "$ROOT/scripts/sandbox-hosts.sh")
UPLINK=$FERRY_SANDBOX_DIR/lan.netns:br-lan
NAME=demo
MEM_MIB=${FERRY_DEMO_MEM_MIB:-256}
STRATEGY=${FERRY_DEMO_STRATEGY:-auto}
CLIENT_PID=

on_host() { local h=$1; shift; "${SANDBOX[@]}" exec "$h" -- env FERRY_NETNS_UPLINK="$UPLINK" "$@"; }
cleanup() {
  if [[ -n $CLIENT_PID ]]; then kill "$CLIENT_PID" 2>/dev/null || true; fi
  on_host h2 node e2e/bin/container-ctl.js remove "$NAME" >/dev/null 2>&1 || true
  on_host h1 node e2e/bin/container-ctl.js remove "$NAME" >/dev/null 2>&1 || true
  "${SANDBOX[@]}" down >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo
echo "== two sandbox hosts"
"${SANDBOX[@]}" down >/dev/null # a clean slate, also after an interrupted earlier demo
"${SANDBOX[@]}" up | tail -n 2

echo
echo "== a runc container on h1: ${MEM_MIB} MiB of memory it keeps rewriting, a counter, a TCP service on :8080"
started=$(on_host h1 node e2e/bin/container-ctl.js start "$NAME" --mem-mib "$MEM_MIB" --dirty-pages-per-sec 2000)
address=$(node -p 'JSON.parse(process.argv[1]).address' "$started")
echo "   $NAME runs on h1 at $address"
on_host h1 ferry ps

echo
echo "== a client on the LAN (outside both hosts) pings $address:8080 every 10 ms over one TCP connection"
client_out=$(mktemp /tmp/ferry-demo-client-XXXXXX)
nsenter --net=/run/netns/ferrydemo-lan node e2e/bin/downtime-client.js "$address" 8080 10 >"$client_out" </dev/null &
CLIENT_PID=$!
sleep 1

echo
echo "== ferry migrate $NAME --to h2 --strategy $STRATEGY   (run on h1)"
on_host h1 ferry migrate "$NAME" --to h2 --strategy "$STRATEGY" --hosts-file "$FERRY_SANDBOX_DIR/hosts.yaml"
sleep 1
kill -TERM "$CLIENT_PID" 2>/dev/null || true
wait "$CLIENT_PID" || true
CLIENT_PID=

echo
echo "== after the move"
on_host h2 ferry ps
verdict=$(on_host h2 node e2e/bin/container-ctl.js verify "$NAME")
node -e '
  const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const v = JSON.parse(process.argv[2]);
  console.log(`   memory check on h2:        ${v.verdict}`);
  console.log(`   TCP connection survived:   ${c.aliveAtEnd ? "yes" : "NO"} (${c.pingsAnswered} of ${c.pingsSent} pings answered)`);
  console.log(`   downtime seen by the client: ${c.longestSilenceMs} ms (longest silence on the connection)`);
  process.exit(c.aliveAtEnd && v.verdict === "ok" ? 0 : 1);
' "$client_out" "$verdict"
rm -f "$client_out"
