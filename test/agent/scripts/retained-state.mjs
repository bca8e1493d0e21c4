// A valid agent state file (src/agent/state.ts schema) holding `jobs` finished jobs shaped like node
// mode's pods (uid id, pod name, namespace, node, container, a few labels), each with CPU and memory
// energy on this machine's modelled devices: a restart with it retains them all at once, which
// is how the 10,000-retained-jobs memory test and bench/agent.mjs get there in seconds.
// Usage as a script: node retained-state.mjs OUT.json JOBS HOST
import { writeFileSync } from "node:fs";

const zero = () => ({ cpu: 0, gpu: 0, memory: 0, total: 0 });
const uid = (i) => `${String(i).padStart(8, "0")}-0000-4000-8000-${String(i).padStart(12, "0")}`;

function totals(id, name, attributes, nowMillis, i) {
  const cpu = 10 + (i % 97);
  const memory = 1 + (i % 13);
  return {
    id,
    name,
    attributes,
    energyJoules: { cpu, gpu: 0, memory, total: cpu + memory },
    facilityEnergyJoules: cpu + memory,
    emissionsGrams: (cpu + memory) * 1e-4,
    embodiedEmissionsGrams: 0.01,
    waterLiters: 1e-5,
    cost: 0,
    lastPowerWatts: zero(),
    phaseEnergyJoules: {},
    deviceEnergyJoules: { "cpu-model:0": cpu, "mem-model": memory },
    firstSeenMillis: nowMillis - 60_000,
    lastSeenMillis: nowMillis - 1_000,
    cpuSeconds: cpu / 4,
  };
}

/** The state document: `jobs` pods finished at `nowMillis`, written by `host`. */
export function retainedState({ jobs, host, nowMillis = Date.now(), mode = "node" }) {
  const list = [];
  const finished = {};
  for (let i = 0; i < jobs; i++) {
    const id = uid(i);
    const name = `train-${i}-worker-${i % 8}`;
    list.push(
      totals(id, name, {
        "k8s.namespace.name": `team-${i % 20}`,
        "k8s.pod.uid": id,
        "k8s.pod.name": name,
        "k8s.node.name": "node-a",
        "k8s.container.name": "trainer",
      }, nowMillis, i),
    );
    finished[id] = nowMillis - 1_000;
  }
  const device = (id, kind) => ({ id, kind, source: "cpu-model", method: "model", energyJoules: 1e6, lastPowerWatts: 5, idleOrigin: "lowest-observed", status: "ok", notes: [] });
  return {
    schema: "powerprint.agent-state",
    version: 1,
    host,
    mode,
    savedMillis: nowMillis - 1_000,
    final: true,
    ledger: {
      startMillis: nowMillis - 3_600_000,
      timeMillis: nowMillis - 1_000,
      jobs: list,
      buckets: { system: totals("system", "system", {}, nowMillis, 0), idle: totals("idle", "idle", {}, nowMillis, 0) },
      devices: [device("cpu-model:0", "cpu"), device("mem-model", "memory")],
      phases: {},
      finished,
    },
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split("/").pop())) {
  const [out, jobs, host] = process.argv.slice(2);
  writeFileSync(out, JSON.stringify(retainedState({ jobs: Number(jobs), host })));
}
