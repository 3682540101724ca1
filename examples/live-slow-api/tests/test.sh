#!/bin/bash
# Runs in the verifier's own sandbox, inside the agent's network: 127.0.0.1:8080 is the
# live service, /logs/traffic the harness's record of the load.
python3 /tests/test_live.py
