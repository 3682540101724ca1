#!/bin/bash
set -e
sed -i 's/^add() { echo \$(( \$1 - \$2 )); }$/add() { echo $(( $1 + $2 )); }/' /app/calc.sh
grep -q '^add() { echo \$(( \$1 + \$2 )); }$' /app/calc.sh
