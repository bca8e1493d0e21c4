#!/bin/sh
# PID 1 of the test's "pod" (unshare --pid --fork --mount-proc): the pause stand-in. It starts the
# agent, starts the training stand-in when the test says go, and SIGTERMs the agent when the test
# says stop. It waits on FIFOs (go, stop) with the shell's own `read`, so it never forks anything else (a
# forked `sleep` would be a process of the pod's job, as it would be in a real pod).
# Usage: pod.sh WORKDIR NODE CLI SCRIPTDIR [more agent flags...]
W="$1"; NODE="$2"; CLI="$3"; HERE="$4"
shift 4
"$NODE" "$CLI" agent --mode pod --podinfo-dir "$W/podinfo" --listen 127.0.0.1:0 --interval 100ms \
  --state-file "$W/state.json" --checkpoint-interval 200ms --marks "$W/marks.jsonl" "$@" 2> "$W/agent.err" &
AGENT=$!
echo "$AGENT" > "$W/agent.pid"
read -r _ < "$W/go"
"$NODE" "$HERE/train.mjs" "$W" &
read -r _ < "$W/stop"
kill -TERM "$AGENT"
wait "$AGENT"
echo "$?" > "$W/agent.rc"
