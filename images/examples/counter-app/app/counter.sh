#!/bin/sh
# Atoll's example application. It counts its runs in its volume /data,
# which the app-manager keeps sealed to the realm and the vendor between
# runs, restarts of the realm and updates of the application.
set -eu
runs=data/runs
n=$(cat "$runs" 2>/dev/null || echo 0)
n=$((n + 1))
echo "$n" > "$runs.new"
mv "$runs.new" "$runs"
echo "counter ${COUNTER_VERSION:-?}: hello from inside a realm, run number $n"
