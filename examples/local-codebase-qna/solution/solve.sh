#!/bin/bash
mkdir -p /logs/agent
echo "The checksum is implemented by adler32() in src/checksum.py; it uses the modulus MOD = 65521." > /logs/agent/answer.txt
