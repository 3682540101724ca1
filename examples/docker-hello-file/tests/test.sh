#!/bin/bash
# Passes when /app/hello.txt holds exactly "Hello, prodbench!" (one trailing newline allowed).
mkdir -p /logs/verifier
reward=0
if [ -f /app/hello.txt ]; then
    # $(...) strips trailing newlines; also require at most one by comparing sizes.
    content=$(cat /app/hello.txt)
    size=$(wc -c < /app/hello.txt)
    if [ "$content" = "Hello, prodbench!" ] && { [ "$size" -eq 17 ] || [ "$size" -eq 18 ]; }; then
        reward=1
    else
        echo "unexpected content in /app/hello.txt:"; cat -A /app/hello.txt
    fi
else
    echo "/app/hello.txt does not exist"
fi
echo "$reward" > /logs/verifier/reward.txt
echo "reward: $reward"
