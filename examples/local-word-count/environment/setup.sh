#!/bin/sh
# Runs once inside the sandbox, cwd = the workdir (/app), after environment/ was copied.
set -e
mkdir -p input
cp words.txt input/words.txt
