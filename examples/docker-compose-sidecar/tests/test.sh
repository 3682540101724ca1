#!/bin/bash
# Reward 1 when /app/answer.txt holds exactly the value the vault serves now.
mkdir -p /logs/verifier
fetch() {
    exec 3<>/dev/tcp/vault/8080 || return 1
    printf 'GET /value HTTP/1.0\r\nHost: vault\r\n\r\n' >&3
    # The body follows the first empty line.
    sed '1,/^\r$/d' <&3
}
expected=$(fetch)
actual=$(cat /app/answer.txt 2>/dev/null)
echo "vault serves: ${expected:-<nothing>}"
echo "answer.txt:   ${actual:-<missing>}"
if [ -n "$expected" ] && [ "$actual" = "$expected" ]; then
    echo 1 > /logs/verifier/reward.txt
else
    echo 0 > /logs/verifier/reward.txt
fi
