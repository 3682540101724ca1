#!/bin/bash
# Runs in the verifier's own sandbox (this task's image), inside the agent's network:
# 127.0.0.1:5432 is the live database, 127.0.0.1:8080 the live API, /logs/traffic the
# harness's record of the load.
python3 /tests/test_migration.py
