#!/bin/bash
# Drop the per-request scan, then put the fix live.
set -euo pipefail
sed -i 's/^    time.sleep(1.0)$/    pass/' /app/api.py
svc restart api
svc status
