#!/bin/bash
# Runs /app/calc.sh on several cases; reward 1 only when all pass.
mkdir -p /logs/verifier
reward=1
check() {
    local want=$1; shift
    local got
    got=$(cd /app && timeout 10 bash ./calc.sh "$@" 2>&1)
    if [ "$got" = "$want" ]; then
        echo "PASS calc.sh $* -> $got"
    else
        echo "FAIL calc.sh $* -> '$got', expected '$want'"
        reward=0
    fi
}
if [ -f /app/calc.sh ]; then
    check 5 add 2 3
    check 0 add 0 0
    check 1 add -4 5
    check 300 add 100 200
    check -1 sub 2 3
    check 7 sub 10 3
    check 6 mul 2 3
    check -20 mul -4 5
else
    echo "/app/calc.sh does not exist"
    reward=0
fi
echo "$reward" > /logs/verifier/reward.txt
echo "reward: $reward"
