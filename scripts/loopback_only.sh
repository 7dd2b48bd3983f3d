#!/bin/sh
# Runs a command in the private network namespace that `unshare -rn` made: loopback is its
# only interface, so every server a test starts is reachable from this machine only — Ray's
# included, whose servers bind every interface and have no loopback-only setting.
#   unshare -rn scripts/loopback_only.sh COMMAND...
set -e
ip link set lo up
exec "$@"
