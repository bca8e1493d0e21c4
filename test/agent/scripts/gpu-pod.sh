#!/bin/sh
# PID 1 of a test "pod" sharing a GPU (unshare --pid --fork --mount-proc): starts the sidecar
# (agent --mode pod), and on "go" starts N processes holding the GPU's device node and one that
# does not (test/agent/scripts/gpu-holder.mjs); on "stop" SIGTERMs the sidecar. It waits on FIFOs
# with the shell's own `read`, so it forks nothing else.
# Usage: gpu-pod.sh WORKDIR NODE CLI SCRIPTDIR N [more agent flags...]
W="$1"; NODE="$2"; CLI="$3"; HERE="$4"; N="$5"
shift 5
"$NODE" "$CLI" agent --mode pod --podinfo-dir "$W/podinfo" --listen 127.0.0.1:0 --interval 100ms \
  --state-file "$W/state.json" --checkpoint-interval 200ms "$@" 2> "$W/agent.err" &
AGENT=$!
read -r _ < "$W/go"
i=0
while [ "$i" -lt "$N" ]; do
  "$NODE" "$HERE/gpu-holder.mjs" "$W" "gpu$i" gpu &
  i=$((i + 1))
done
"$NODE" "$HERE/gpu-holder.mjs" "$W" cpu cpu &
read -r _ < "$W/stop"
kill -TERM "$AGENT"
wait "$AGENT"
echo "$?" > "$W/agent.rc"
