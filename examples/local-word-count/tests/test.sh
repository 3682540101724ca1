#!/bin/bash
# Compares /app/count.txt with the word count of the pristine copy in tests/.
mkdir -p /logs/verifier
reward=0
expected=$(wc -w < /tests/words.txt | tr -d '[:space:]')
if [ -f /app/count.txt ]; then
    got=$(tr -d '[:space:]' < /app/count.txt)
    if [ "$got" = "$expected" ]; then
        reward=1
    else
        echo "expected $expected, /app/count.txt holds '$got'"
    fi
else
    echo "/app/count.txt does not exist"
fi
echo "$reward" > /logs/verifier/reward.txt
echo "reward: $reward"
