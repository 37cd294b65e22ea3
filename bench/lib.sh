# shellcheck shell=bash disable=SC2034
# (SC2034: the variables set here are for the scripts that source it.)
# Set-up shared by the benchmarks (bench/shell-latency, bench/transfer);
# sourced, not run.  The caller has `set -euo pipefail` and has cd'd to the
# repository root.  Everything runs on loopback as the current user:
#
#   bench_need_ssh               installs openssh-server/-client if missing
#   bench_build DIR              builds tether there; sets $bin
#   bench_tmp PREFIX             makes $tmp, removed (with every pid in
#                                $pids stopped, after the script's own
#                                bench_on_exit if it has one) on exit
#   bench_tether_up TITLE [AGENT_ARGS...]
#                                relay, technician, ticket, joined agent;
#                                sets $ticket, $addr, $tether (the console),
#                                $agent_pid
#   bench_ssh_up                 relay sshd, customer sshd, reverse tunnel;
#                                sets $ssh_cfg, $p_relay, $p_cust, $p_tunnel,
#                                $sftp_server
#
# Reaching the customer through the tunnel, as the technician would:
#   ssh -F "$ssh_cfg" -J "127.0.0.1:$p_relay" -p "$p_tunnel" 127.0.0.1

root=$PWD
pids=()
tmp=""

# sshd, ssh, ssh-keygen and scp (apt packages openssh-server and
# openssh-client), installed with apt-get when missing (as root or through
# sudo).  As root, sshd needs its privilege separation directory /run/sshd.
bench_need_ssh() {
	local need_pkgs=() t sudo=""
	for t in /usr/sbin/sshd:openssh-server ssh:openssh-client \
		 ssh-keygen:openssh-client scp:openssh-client; do
		command -v "${t%%:*}" >/dev/null 2>&1 || need_pkgs+=("${t##*:}")
	done
	if [ "${#need_pkgs[@]}" -gt 0 ]; then
		echo "installing ${need_pkgs[*]} (apt-get) for the ssh comparison" >&2
		[ "$(id -u)" = 0 ] || sudo=sudo
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -qq
		# shellcheck disable=SC2046 # one word per package
		$sudo apt-get install -y -qq --no-install-recommends \
			$(printf '%s\n' "${need_pkgs[@]}" | sort -u) >/dev/null
	fi
	# sshd refuses to start as root without it; the package's unit makes it.
	if [ "$(id -u)" = 0 ] && [ ! -d /run/sshd ]; then
		mkdir -p /run/sshd && chmod 0755 /run/sshd
	fi
}

bench_build() {
	bash scripts/build.sh "$1"
	case $1 in /*) bin=$1 ;; *) bin=$root/$1 ;; esac
}

bench_cleanup() {
	local p
	# A script's own clean-up first (it may stop what uses the rest).
	if declare -F bench_on_exit >/dev/null; then bench_on_exit || true; fi
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$tmp" ] || rm -rf "$tmp"
}

# $1: mktemp template prefix, e.g. /tmp/tether-bench.
bench_tmp() {
	tmp=$(mktemp -d "$1.XXXXXX")
	trap bench_cleanup EXIT
	# Without these a signal would end bash without the EXIT trap.
	trap 'exit 130' INT
	trap 'exit 143' TERM HUP
}

# A TCP port on loopback that nothing listens on now.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || break
	done
	echo "$p"
}

# Waits (10 s at most) until something listens on 127.0.0.1:$1.
wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on 127.0.0.1:$1" >&2
	return 1
}

# ---- tether: relay, technician, ticket, agent -------------------------
# As scripts/demo.sh sets them up, in $tmp.  $1: the ticket's title; the
# other arguments go to `tether-agent join`.
bench_tether_up() {
	local title=$1 init token fp code
	shift
	export XDG_CONFIG_HOME=$tmp/console-config
	# The agent's shells inherit this and keep no history.
	export HISTFILE=/dev/null
	tether=$bin/console/tether
	init=$("$bin/relay/tether-relay" init --data "$tmp/relay" --json)
	token=$(printf '%s' "$init" |
		sed -n 's/.*"admin_token": "\([^"]*\)".*/\1/p')
	fp=$(printf '%s' "$init" |
		sed -n 's/.*"fingerprint": "\([^"]*\)".*/\1/p')
	"$bin/relay/tether-relay" run --data "$tmp/relay" \
		--listen 127.0.0.1:0 >"$tmp/relay.out" 2>"$tmp/relay.log" &
	pids+=($!)
	for _ in $(seq 100); do
		grep -q listening "$tmp/relay.out" 2>/dev/null && break
		sleep 0.1
	done
	addr=$(sed -n 's/.*listening on \([^ ]*\) .*/\1/p' "$tmp/relay.out")
	[ -n "$addr" ] || { cat "$tmp/relay.log" >&2; return 1; }
	"$tether" login "$addr" --token "$token" --fingerprint "$fp" \
		>/dev/null
	ticket=$("$tether" ticket new "$title")
	code=$("$tether" invite "$ticket" 2>/dev/null)
	XDG_CONFIG_HOME=$tmp/agent-config "$bin/agent/tether-agent" join \
		"$code" --relay "$addr" --fingerprint "$fp" --yes "$@" \
		>"$tmp/agent.out" 2>&1 &
	agent_pid=$!
	pids+=($!)
	for _ in $(seq 100); do
		"$tether" ticket show "$ticket" --json 2>/dev/null |
			grep -q '"joined"' && break
		sleep 0.1
	done
	# Pairs now, so that the measured runs start on a paired session.
	"$tether" exec "$ticket" -- true
}

# ---- ssh: a relay sshd, a customer sshd, a reverse tunnel -------------
# Two throwaway sshd on loopback ports with generated host keys and a
# generated client key.  The "customer" keeps `ssh -N -R
# 127.0.0.1:P_TUNNEL:127.0.0.1:P_CUST -p P_RELAY 127.0.0.1` open.
bench_ssh_up() {
	local name port_var port
	# scp speaks SFTP since OpenSSH 9.0.  sshd's built-in server, not
	# Debian's /usr/lib/openssh/sftp-server: sshd starts that one through
	# the user's login shell, and Debian's bash then reads ~/.bashrc (it
	# does for any command sshd runs), which can cost seconds per scp
	# (pyenv's init did: 1.2 to 1.7 s on the machine bench/README.md
	# describes) and would be timed as scp's.
	sftp_server=internal-sftp
	ssh-keygen -q -t ed25519 -N '' -f "$tmp/client_key" -C bench
	cp "$tmp/client_key.pub" "$tmp/authorized_keys"
	p_relay=$(free_port)
	p_cust=$(free_port)
	p_tunnel=$(free_port)
	: >"$tmp/known_hosts"
	for name in relay cust; do
		port_var=p_$name
		port=${!port_var}
		ssh-keygen -q -t ed25519 -N '' -f "$tmp/${name}_host_key" \
			-C "$name"
		cat >"$tmp/sshd_$name.conf" <<EOF
ListenAddress 127.0.0.1
Port $port
HostKey $tmp/${name}_host_key
PidFile $tmp/sshd_$name.pid
AuthorizedKeysFile $tmp/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
AllowTcpForwarding yes
PermitTTY yes
PrintMotd no
PrintLastLog no
Subsystem sftp $sftp_server
EOF
		/usr/sbin/sshd -D -e -f "$tmp/sshd_$name.conf" \
			2>"$tmp/sshd_$name.log" &
		pids+=($!)
		printf '[127.0.0.1]:%s %s\n' "$port" \
			"$(cut -d' ' -f1,2 "$tmp/${name}_host_key.pub")" \
			>>"$tmp/known_hosts"
	done
	# Through the tunnel the technician meets the customer's sshd.
	printf '[127.0.0.1]:%s %s\n' "$p_tunnel" \
		"$(cut -d' ' -f1,2 "$tmp/cust_host_key.pub")" >>"$tmp/known_hosts"
	ssh_cfg=$tmp/ssh_config
	cat >"$ssh_cfg" <<EOF
Host *
	IdentityFile $tmp/client_key
	IdentitiesOnly yes
	UserKnownHostsFile $tmp/known_hosts
	StrictHostKeyChecking yes
	BatchMode yes
	ExitOnForwardFailure yes
	LogLevel ERROR
EOF
	wait_port "$p_relay"
	wait_port "$p_cust"
	ssh -F "$ssh_cfg" -N -R "127.0.0.1:$p_tunnel:127.0.0.1:$p_cust" \
		-p "$p_relay" 127.0.0.1 2>"$tmp/customer_ssh.log" &
	pids+=($!)
	wait_port "$p_tunnel"
	ssh -F "$ssh_cfg" -J "127.0.0.1:$p_relay" -p "$p_tunnel" 127.0.0.1 \
		true
}
