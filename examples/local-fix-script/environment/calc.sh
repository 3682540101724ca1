#!/bin/bash
# Usage: calc.sh add|sub|mul A B
add() { echo $(( $1 - $2 )); }
sub() { echo $(( $1 - $2 )); }
mul() { echo $(( $1 * $2 )); }

case "$1" in
    add|sub|mul) "$1" "$2" "$3" ;;
    *) echo "usage: $0 add|sub|mul A B" >&2; exit 2 ;;
esac
