#!/bin/bash
# Runs in the verifier's own sandbox, inside the agent's network: 127.0.0.1:8080 is the
# live API (the backend's fault is over by now), /logs/traffic the harness's record.
python3 /tests/test_incident.py
