#!/usr/bin/env bash
# Installs what building and testing tether needs on Debian 12 (root or sudo):
# the libraries, tmux (shell tests drive a real terminal), prometheus (its
# promtool checks the relay's /metrics output) and OpenSSH (the ssh and
# forward tests start their own sshd and use ssh, ssh-keygen, ssh-agent).
# The fuzzing run (scripts/fuzz.sh) needs clang with its runtime libraries:
# Debian 12 ships libFuzzer and the ASan/UBSan runtimes for clang 14 in
# libclang-rt-14-dev, which clang only recommends; llvm brings
# llvm-symbolizer, so that sanitizer reports name functions and lines.
# clang-format (14 on Debian 12) checks the layout of every C file.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential meson ninja-build pkg-config git
      libuv1-dev libssl-dev zlib1g-dev libsqlite3-dev libjansson-dev
      libcriterion-dev libssh2-1-dev libhttp-parser-dev openssl
      tmux less prometheus openssh-server openssh-client
      monitoring-plugins-basic iproute2
      clang libclang-rt-14-dev llvm clang-format)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	$SUDO apt-get update -qq
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
