#!/bin/bash
# Runs /app/fizzbuzz.sh and compares its output with tests/expected.txt.
mkdir -p /logs/verifier
reward=0
if [ -f /app/fizzbuzz.sh ]; then
    if timeout 10 bash /app/fizzbuzz.sh > /tmp/fizzbuzz.out 2>/tmp/fizzbuzz.err; then
        if diff -u /tests/expected.txt /tmp/fizzbuzz.out; then
            reward=1
        fi
    else
        echo "fizzbuzz.sh failed:"; cat /tmp/fizzbuzz.err
    fi
else
    echo "/app/fizzbuzz.sh does not exist"
fi
echo "$reward" > /logs/verifier/reward.txt
echo "reward: $reward"
