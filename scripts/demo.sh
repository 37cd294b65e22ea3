#!/usr/bin/env bash
# The main job end to end on the embedded defaults: a relay on SQLite in a
# temporary directory, a technician, a ticket and an invite, an agent joining
# with the code, commands run on the ticket, the audit trail, and clean-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
bin=$PWD/build
tmp=$(mktemp -d /tmp/tether-demo.XXXXXX)
relay_pid=""; agent_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
export XDG_CONFIG_HOME=$tmp/console-config
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "tether-relay init --data $tmp/relay"
init=$("$bin/relay/tether-relay" init --data "$tmp/relay" --json)
token=$(printf '%s' "$init" | sed -n 's/.*"admin_token": "\(.*\)".*/\1/p')
fp=$(printf '%s' "$init" | sed -n 's/.*"fingerprint": "\(.*\)".*/\1/p')
echo "relay fingerprint $fp; admin token created (not shown)"

step "tether-relay run --data $tmp/relay --listen 127.0.0.1:0 &"
"$bin/relay/tether-relay" run --data "$tmp/relay" --listen 127.0.0.1:0 \
	>"$tmp/relay.out" 2>"$tmp/relay.log" &
relay_pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/relay.out" 2>/dev/null && break; sleep 0.1; done
cat "$tmp/relay.out"
addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/relay.out")

step "tether login $addr --token ... --fingerprint $fp"
"$bin/console/tether" login "$addr" --token "$token" --fingerprint "$fp"

step "tether ticket new 'Outlook crashes on start' --customer 'ACME / Jo'"
ticket=$("$bin/console/tether" ticket new "Outlook crashes on start" --customer "ACME / Jo")
echo "$ticket"

step "tether invite $ticket"
code=$("$bin/console/tether" invite "$ticket")
echo "$code"

step "tether-agent join $code --relay $addr --fingerprint $fp --yes &   (the customer)"
"$bin/agent/tether-agent" join "$code" --relay "$addr" --fingerprint "$fp" --yes \
	>"$tmp/agent.out" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
	"$bin/console/tether" ticket show "$ticket" --json 2>/dev/null | grep -q '"joined"' && break
	sleep 0.1
done

step "tether exec $ticket -- uname -a"
"$bin/console/tether" exec "$ticket" -- uname -a

step "tether exec $ticket -- sh -c 'df -h / | tail -1; exit 3'"
set +e
"$bin/console/tether" exec "$ticket" -- sh -c 'df -h / | tail -1; exit 3'
echo "(exit status $?)"
set -e

step "echo 'hello from the technician' | tether exec $ticket -- tr a-z A-Z"
echo 'hello from the technician' | "$bin/console/tether" exec "$ticket" -- tr a-z A-Z

step "printf 'cd /tmp && pwd; echo \$0; exit 4' | tether shell $ticket   (a shell; no terminal here, so no PTY)"
set +e
printf 'cd /tmp && pwd; echo $0; exit 4\n' | "$bin/console/tether" shell "$ticket"
echo "(exit status $?)"
set -e

step "tether put $ticket -r fix /tmp/tether-demo-fix   (a directory tree, verified file by file)"
mkdir -p "$tmp/fix/conf.d"
printf 'timeout = 30\n' >"$tmp/fix/conf.d/outlook.conf"
head -c 3000000 /dev/urandom >"$tmp/fix/addin.bin"
( cd "$tmp" && "$bin/console/tether" put "$ticket" -r fix /tmp/tether-demo-fix )
echo "(no progress bar without a terminal; on the customer's machine now:)"
"$bin/console/tether" exec "$ticket" -- find /tmp/tether-demo-fix -type f -exec sha256sum {} +

step "tether get $ticket -r '/tmp/tether-demo-fix/*' back/ --json   (globs expand remotely)"
mkdir -p "$tmp/back"
"$bin/console/tether" get "$ticket" -r '/tmp/tether-demo-fix/*' "$tmp/back/" --json >"$tmp/get.json"
grep -o '"sha256": *"[0-9a-f]*"' "$tmp/get.json" || true
cmp "$tmp/fix/addin.bin" "$tmp/back/addin.bin" && echo "addin.bin came back identical"
"$bin/console/tether" exec "$ticket" -- rm -rf /tmp/tether-demo-fix

step "what the customer saw (tether-agent output)"
cat "$tmp/agent.out"

step "tether ticket close $ticket --resolution 'Reinstalled the add-in'"
"$bin/console/tether" ticket close "$ticket" --resolution "Reinstalled the add-in"

step "tether ticket show $ticket"
"$bin/console/tether" ticket show "$ticket"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""
echo; echo "demo finished: relay, agent and console cleaned up"
