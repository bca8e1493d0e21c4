#!/bin/sh
# PID 1 of the exit-tail test's "pod" (unshare --pid --fork --mount-proc): the pause stand-in. It
# starts the agent (a 500 ms interval), then, when the test says go, a job whose top-level process
# (a shell, its parent outside the job: this PID 1) starts two CPU-burning workers, reaps them and
# exits at once; then SIGTERMs the agent when the test says stop. Waits on FIFOs with the shell's
# own `read` (no forks of its own).
# Usage: tail-pod.sh WORKDIR NODE CLI SCRIPTDIR SECONDS
W="$1"; NODE="$2"; CLI="$3"; HERE="$4"; SECONDS_EACH="$5"
"$NODE" "$CLI" agent --mode pod --podinfo-dir "$W/podinfo" --listen 127.0.0.1:0 --interval 500ms 2> "$W/agent.err" &
AGENT=$!
read -r _ < "$W/go"
sh -c '"$1" "$2" "$3" a "$4" & "$1" "$2" "$3" b "$4" & wait' launcher "$NODE" "$HERE/tail-worker.mjs" "$W" "$SECONDS_EACH"
echo done > "$W/launcher.done"
read -r _ < "$W/stop"
kill -TERM "$AGENT"
wait "$AGENT"
echo "$?" > "$W/agent.rc"
