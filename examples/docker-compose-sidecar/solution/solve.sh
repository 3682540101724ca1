#!/bin/bash
# Fetch the vault's value over a raw TCP connection and keep only the body.
set -e
exec 3<>/dev/tcp/vault/8080
printf 'GET /value HTTP/1.0\r\nHost: vault\r\n\r\n' >&3
sed '1,/^\r$/d' <&3 > /app/answer.txt
test -s /app/answer.txt
