#!/usr/bin/env bash
# The main job end to end on the embedded defaults: a relay on SQLite in a
# temporary directory, a technician, a ticket and an invite, an agent joining
# with the code, commands, a shell and files on the ticket, diagnostics, the
# live sessions, a comment, a technician added over the network, the
# audit trail; then an enrolled agent whose failing health check opens a
# ticket by itself with diagnostics attached; and clean-up.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
bin=$PWD/build
tmp=$(mktemp -d /tmp/tether-demo.XXXXXX)
relay_pid=""; agent_pid=""; svc_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ -n "$svc_pid" ] && kill "$svc_pid" 2>/dev/null || true
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

step "tether diag $ticket   (a diagnostics bundle, problems first; saved on the ticket)"
"$bin/console/tether" diag "$ticket" >"$tmp/diag.txt"
head -40 "$tmp/diag.txt"

step "tether sessions   (who is connected to what, right now)"
"$bin/console/tether" sessions

step "tether ticket comment $ticket 'Add-in 2.3 crashes on load; reinstalled it'"
"$bin/console/tether" ticket comment "$ticket" "Add-in 2.3 crashes on load; reinstalled it"

step "tether technician add bob --role technician; tether technician list   (an admin, over the network)"
"$bin/console/tether" technician add bob --role technician >/dev/null
echo "bob's one-time login token created (not shown)"
"$bin/console/tether" technician list

step "what the customer saw (tether-agent output)"
cat "$tmp/agent.out"

step "tether ticket close $ticket --resolution 'Reinstalled the add-in'"
"$bin/console/tether" ticket close "$ticket" --resolution "Reinstalled the add-in"

step "tether ticket show $ticket"
"$bin/console/tether" ticket show "$ticket"
wait "$agent_pid" 2>/dev/null || true
agent_pid=""

step "tether-relay enroll-token --data $tmp/relay --ttl 10m   (an admin)"
etoken=$("$bin/relay/tether-relay" enroll-token --data "$tmp/relay" --ttl 10m --json |
	sed -n 's/.*"token": "\(.*\)".*/\1/p')
echo "one-time enrollment token created (not shown)"

step "tether-agent enroll --relay $addr --token ... --fingerprint $fp --name web-01 --label env=demo"
conf=$tmp/agent/agent.conf
"$bin/agent/tether-agent" enroll --relay "$addr" --token "$etoken" --fingerprint "$fp" \
	--name web-01 --label env=demo --config "$conf"
printf '#!/bin/sh\n[ -e %s/broken ] && { echo "APP CRITICAL - not answering"; exit 2; }\necho "APP OK - answering | time=0.012s;1;2;0"\n' \
	"$tmp" >"$tmp/check_app"
chmod 755 "$tmp/check_app"
printf '\n[check root_disk]\nbuiltin = disk\npath = /\ninterval = 5\n\n[check app]\ncommand = %s\ninterval = 1\nretries = 2\n' \
	"$tmp/check_app" >>"$conf"
echo "checks added to $conf:"; sed -n '/^\[check/,$p' "$conf"

step "tether-agent run --config $conf &   (as the systemd unit in dist/ would)"
"$bin/agent/tether-agent" run --config "$conf" >"$tmp/svc.out" 2>&1 &
svc_pid=$!
for _ in $(seq 100); do grep -q authenticated "$tmp/svc.out" 2>/dev/null && break; sleep 0.1; done
sleep 6

step "tether agents; tether health web-01"
"$bin/console/tether" agents
"$bin/console/tether" health web-01

step "the app breaks: its check goes CRITICAL, HARD after 2 tries, and a ticket opens by itself"
touch "$tmp/broken"
hticket=""
for _ in $(seq 150); do
	hticket=$("$bin/console/tether" ticket list --json | tr -d ' \n' |
		sed -n 's/.*"id":"\(T-[0-9]*\)","title":"web-01:app[^"]*".*/\1/p')
	[ -n "$hticket" ] && break
	sleep 0.2
done
"$bin/console/tether" ticket list
for _ in $(seq 100); do
	"$bin/console/tether" ticket show "$hticket" --json | grep -q diag_attached && break
	sleep 0.2
done

step "tether diag $hticket --saved   (the bundle the agent attached)"
"$bin/console/tether" diag "$hticket" --saved >"$tmp/diag2.txt"
head -15 "$tmp/diag2.txt"

step "the app recovers: a note on the same ticket"
rm -f "$tmp/broken"
for _ in $(seq 100); do
	"$bin/console/tether" ticket show "$hticket" --json | grep -q health_recovered && break
	sleep 0.2
done
"$bin/console/tether" ticket show "$hticket" | tail -6
kill "$svc_pid"; wait "$svc_pid" 2>/dev/null || true; svc_pid=""
echo; echo "demo finished: relay, agents and console cleaned up"
