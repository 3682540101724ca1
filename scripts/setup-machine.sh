#!/usr/bin/env bash
# Installs and starts what prodbench needs on a fresh Debian 12 machine (as root):
# Docker's engine, debootstrap and bubblewrap from Debian's packages, then dockerd.
# With --test, also Chromium (the HTML report's test opens it headless).
# Idempotent: safe to run again.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v bwrap >/dev/null || need+=(bubblewrap)
if [ "${1:-}" = --test ]; then
  command -v chromium >/dev/null || need+=(chromium)
fi
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"
fi

if ! docker version >/dev/null 2>&1; then
  nohup dockerd >/var/log/prodbench-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    [ -S /var/run/docker.sock ] && docker version >/dev/null 2>&1 && break
    sleep 1
  done
  docker version >/dev/null || { echo "dockerd did not start; see /var/log/prodbench-dockerd.log" >&2; exit 1; }
fi
echo "docker $(docker version --format '{{.Server.Version}}'), bwrap $(bwrap --version | cut -d' ' -f2), debootstrap ready"
