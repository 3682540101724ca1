#!/bin/bash
# The /sum endpoint subtracts; make it add.
set -e
sed -i 's/self.reply(200, str(a - b))/self.reply(200, str(a + b))/' /app/server.py
grep -q 'str(a + b)' /app/server.py
