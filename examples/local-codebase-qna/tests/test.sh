#!/bin/bash
# Two behavioural checks, reported per test in CTRF so each counts on its own.
answer=$(cat /logs/agent/answer.txt 2>/dev/null)
status() { if [ "$1" = 0 ]; then echo passed; else echo failed; fi; }
echo "$answer" | grep -q adler32; names=$(status $?)
echo "$answer" | grep -q 65521; modulus=$(status $?)
cat > /logs/verifier/ctrf.json <<JSON
{"results": {"tool": {"name": "sh"}, "tests": [
  {"name": "test_names_the_function", "status": "$names"},
  {"name": "test_names_the_modulus", "status": "$modulus"}]}}
JSON
if [ "$names" = passed ] && [ "$modulus" = passed ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt
