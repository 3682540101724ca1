#!/bin/sh
# A slow-starting service: it serves nothing for STARTUP_DELAY seconds, then its value.
set -e
echo "vault: starting, ready in ${STARTUP_DELAY:-0} s"
sleep "${STARTUP_DELAY:-0}"
mkdir -p /www
printf '%s\n' "$VAULT_VALUE" > /www/value
echo "vault: serving on :8080 since $(date +%s%N)"
exec busybox httpd -f -vv -p 8080 -h /www
