#!/bin/bash
# Starts /app/server.py, calls it over HTTP (tests/test_http.py) and writes
# /logs/verifier/reward.json. "reward" is 1.0 only when every check passes.
mkdir -p /logs/verifier
FAIL='{"health": 0.0, "greeting": 0.0, "sum": 0.0, "errors": 0.0, "reward": 0.0}'
PORT=8080

# The greeting file is part of the environment, not of the agent's work: restore it
# so the test does not depend on what the agent did to it.
cp /tests/greeting.txt /app/greeting.txt 2>/dev/null

PORT=$PORT python3 /app/server.py > /tmp/server.log 2>&1 &
server=$!

# Wait up to 15 s for the port to accept connections (no curl in the image: bash /dev/tcp).
ready=0
for _ in $(seq 1 150); do
    if ! kill -0 "$server" 2>/dev/null; then
        break
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.1
done

if [ "$ready" -ne 1 ]; then
    echo "the server did not start; its output:"
    cat /tmp/server.log
    echo "$FAIL" > /logs/verifier/reward.json
else
    result=$(python3 /tests/test_http.py "http://127.0.0.1:$PORT")
    if [ -n "$result" ]; then
        echo "$result" > /logs/verifier/reward.json
    else
        echo "test_http.py produced no result"
        echo "$FAIL" > /logs/verifier/reward.json
    fi
fi

kill "$server" 2>/dev/null
wait "$server" 2>/dev/null
cat /logs/verifier/reward.json
exit 0
