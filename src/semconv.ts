/**
 * Metric and attribute names powerprint exports (OpenTelemetry; units in UCUM).
 *
 * Device metrics follow the OTel hardware semantic conventions (hw.energy, hw.power, hw.id,
 * hw.type, hw.name). Per-job metrics live under `powerprint.job.*`. This table is the single
 * source of the names: exporters register instruments from it, tests and docs read it.
 */

/** Attribute keys on data points. */
export const ATTR = {
  /** OTel semconv: device id ("gpu0", "rapl:package-0"). */
  hwId: "hw.id",
  /** OTel semconv: device kind ("gpu", "cpu", "memory"). */
  hwType: "hw.type",
  /** OTel semconv: device model name ("NVIDIA H100 80GB HBM3"). */
  hwName: "hw.name",
  /** OTel semconv: the device this one is part of (a MIG instance's GPU, "gpu0"); only on such parts. */
  hwParent: "hw.parent",
  /** "true" on a GPU shared with other pods of which a sidecar counts only its pod's estimated share (pod mode). */
  gpuShared: "powerprint.gpu.shared",
  /** How the device figure was obtained: "counter" | "power" | "model". */
  method: "powerprint.method",
  /** Collector that read the device ("nvml", "rapl", "sim"...). */
  source: "powerprint.source",
  jobId: "powerprint.job.id",
  jobName: "powerprint.job.name",
  /** Training phase from the marks file ("train", "eval"...). */
  phase: "powerprint.phase",
  /** Unattributed energy bucket: "system" (processes outside any job) or "idle". */
  bucket: "powerprint.bucket",
  gridZone: "powerprint.grid.zone",
  gridSource: "powerprint.grid.source",
  /** "none" for a live or configured value; else the fallback used: "stale", "static-table", "world-average". */
  gridFallback: "powerprint.grid.fallback",
  /** Which exporter failed ("otlp", "console"). */
  exporter: "powerprint.exporter",
  /** OTel semconv error.type: the failure kind ("ECONNREFUSED", "http_503", "timeout"). */
  errorType: "error.type",
  /** OTel GenAI semconv: the model a request is made to (the serving engine's model label; absent for engines without one). */
  genAiRequestModel: "gen_ai.request.model",
  /** OTel GenAI semconv: "input" (prompt tokens) or "output" (generated tokens). */
  genAiTokenType: "gen_ai.token.type",
  /** Serving energy: "active" (a request in flight or work counted) or "idle" (the model kept loaded). */
  servingState: "powerprint.serving.state",
  /** Why the agent dropped jobs: "retention", "max-finished-jobs", "max-jobs". */
  reason: "powerprint.reason",
  /** A job's lifecycle state in the agent: "live" or "finished". */
  jobState: "powerprint.job.state",
  /** OTel semconv cpu.mode: "user" or "system". */
  cpuMode: "cpu.mode",
} as const;

/** Resource attribute keys (OTel semconv). */
export const RESOURCE_ATTR = {
  serviceName: "service.name",
  serviceInstanceId: "service.instance.id",
  serviceVersion: "service.version",
  hostName: "host.name",
  k8sPodName: "k8s.pod.name",
  k8sPodUid: "k8s.pod.uid",
  k8sNamespaceName: "k8s.namespace.name",
  k8sNodeName: "k8s.node.name",
  containerId: "container.id",
} as const;

/** Default service.name when neither --service-name, OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES set one. */
export const DEFAULT_SERVICE_NAME = "powerprint";

/** UCUM units. */
export const UNIT = {
  joules: "J",
  watts: "W",
  grams: "g",
  liters: "L",
  seconds: "s",
  /** Grams CO2e per kilowatt-hour in UCUM ("kW.h": the product of kW and h). */
  gramsPerKwh: "g/kW.h",
  failures: "{failure}",
  ticks: "{tick}",
  jobs: "{job}",
  bytes: "By",
  samples: "{sample}",
  tokens: "{token}",
  steps: "{step}",
  requests: "{request}",
} as const;

/** OTel instrument kind: counters are cumulative totals, gauges the last interval. */
export type InstrumentKind = "counter" | "gauge";

/** One exported metric: the table in docs/metrics.md "The metrics" lists the same facts. */
export interface MetricSpec {
  name: string;
  instrument: InstrumentKind;
  unit: string;
  description: string;
  /** Attribute keys on every data point (job metrics also carry the job's --tag attributes). */
  attributes: string[];
}

/** Metric names (OTel, dotted; see docs/metrics.md for how backends render them). */
export const METRIC = {
  hwEnergy: "hw.energy",
  hwPower: "hw.power",
  jobEnergy: "powerprint.job.energy",
  jobFacilityEnergy: "powerprint.job.facility.energy",
  jobPower: "powerprint.job.power",
  jobEmissions: "powerprint.job.emissions",
  jobEmbodiedEmissions: "powerprint.job.embodied.emissions",
  jobWater: "powerprint.job.water",
  jobPhaseEnergy: "powerprint.job.phase.energy",
  jobCpuTime: "powerprint.job.cpu.time",
  jobDeviceEnergy: "powerprint.job.device.energy",
  jobSamples: "powerprint.job.samples",
  jobTokens: "powerprint.job.tokens",
  jobSteps: "powerprint.job.steps",
  servingTokens: "powerprint.job.serving.tokens",
  servingRequests: "powerprint.job.serving.requests",
  servingEnergy: "powerprint.job.serving.energy",
  servingEmissions: "powerprint.job.serving.emissions",
  bucketEnergy: "powerprint.bucket.energy",
  gridIntensity: "powerprint.grid.intensity",
  exportFailures: "powerprint.export.failures",
  agentTickDuration: "powerprint.agent.tick.duration",
  agentTicksSkipped: "powerprint.agent.ticks.skipped",
  agentSourceFailures: "powerprint.agent.source.failures",
  agentSourceHung: "powerprint.agent.source.hung",
  agentJobs: "powerprint.agent.jobs",
  agentJobsDropped: "powerprint.agent.jobs.dropped",
  processCpuTime: "process.cpu.time",
  processMemoryUsage: "process.memory.usage",
} as const;

const JOB_KEYS = [ATTR.jobId, ATTR.jobName];

/** One metric's spec (a table row: name, instrument, unit, attribute keys, then the description). */
function metric(name: string, instrument: MetricSpec["instrument"], unit: string, attributes: readonly string[], description: string): MetricSpec {
  return { name, instrument, unit, description, attributes: [...attributes] };
}

/** Every metric powerprint exports. Counters carry cumulative ledger totals; gauges the last interval. */
export const METRICS: readonly MetricSpec[] = [
  metric(METRIC.hwEnergy, "counter", UNIT.joules, [ATTR.hwId, ATTR.hwType, ATTR.hwName, ATTR.method, ATTR.source, ATTR.hwParent, ATTR.gpuShared], "Energy consumed by the device since powerprint started (hardware counter, or integrated power/model: see powerprint.method)"),
  metric(METRIC.hwPower, "gauge", UNIT.watts, [ATTR.hwId, ATTR.hwType, ATTR.hwName, ATTR.method, ATTR.source, ATTR.hwParent, ATTR.gpuShared], "Average power of the device over the last sampling interval"),
  metric(METRIC.jobEnergy, "counter", UNIT.joules, [...JOB_KEYS, ATTR.hwType], "IT energy attributed to the job, by device kind (sum over hw.type for the job's total)"),
  metric(METRIC.jobFacilityEnergy, "counter", UNIT.joules, [...JOB_KEYS], "Facility energy of the job: IT energy x PUE"),
  metric(METRIC.jobPower, "gauge", UNIT.watts, [...JOB_KEYS, ATTR.hwType], "Average power attributed to the job over the last sampling interval, by device kind"),
  metric(METRIC.jobEmissions, "counter", UNIT.grams, [...JOB_KEYS], "Operational emissions of the job, grams CO2e (facility energy x grid intensity at the time)"),
  metric(METRIC.jobEmbodiedEmissions, "counter", UNIT.grams, [...JOB_KEYS], "Embodied emissions of the devices the job held, grams CO2e (share of device lifetime)"),
  metric(METRIC.jobWater, "counter", UNIT.liters, [...JOB_KEYS], "Water consumed for the job's energy, litres (site WUE and electricity water intensity)"),
  metric(METRIC.jobPhaseEnergy, "counter", UNIT.joules, [...JOB_KEYS, ATTR.phase], "IT energy attributed to the job per training phase (POWERPRINT_MARKS)"),
  metric(METRIC.jobCpuTime, "counter", UNIT.seconds, [...JOB_KEYS], "CPU time used by the job's processes (user + system, reaped descendants included), seconds"),
  metric(METRIC.jobDeviceEnergy, "counter", UNIT.joules, [...JOB_KEYS, ATTR.hwId, ATTR.hwType, ATTR.hwParent, ATTR.gpuShared], "IT energy attributed to the job per device it used (a GPU's energy per pod in node mode; only devices the job drew energy from)"),
  metric(METRIC.jobSamples, "counter", UNIT.samples, [...JOB_KEYS], "Samples the job has processed, as its marks last said (POWERPRINT_MARKS `samples`; only jobs that mark it)"),
  metric(METRIC.jobTokens, "counter", UNIT.tokens, [...JOB_KEYS], "Tokens the job has processed, as its marks last said (POWERPRINT_MARKS `tokens`; only jobs that mark it)"),
  metric(METRIC.jobSteps, "counter", UNIT.steps, [...JOB_KEYS], "Training steps of the job, as its marks last said (POWERPRINT_MARKS `step`; only jobs that mark it)"),
  metric(METRIC.servingTokens, "counter", UNIT.tokens, [...JOB_KEYS, ATTR.genAiRequestModel, ATTR.genAiTokenType], "Tokens the job's inference server counted (--work-from): input = prompt, output = generated; per model"),
  metric(METRIC.servingRequests, "counter", UNIT.requests, [...JOB_KEYS, ATTR.genAiRequestModel], "Requests the job's inference server counted (--work-from; engines with a request counter); per model"),
  metric(METRIC.servingEnergy, "counter", UNIT.joules, [...JOB_KEYS, ATTR.genAiRequestModel, ATTR.servingState], "The job's IT energy split among its server's models (--work-from), active (requests in flight) or idle (model kept loaded)"),
  metric(METRIC.servingEmissions, "counter", UNIT.grams, [...JOB_KEYS, ATTR.genAiRequestModel], "Operational emissions (CO2e) of that energy, per model (--work-from)"),
  metric(METRIC.bucketEnergy, "counter", UNIT.joules, [ATTR.bucket, ATTR.hwType], "Device energy attributed to no job: processes outside any job (system) or idle devices (idle)"),
  metric(METRIC.gridIntensity, "gauge", UNIT.gramsPerKwh, [ATTR.gridZone, ATTR.gridSource, ATTR.gridFallback], "Grid carbon intensity used for the last interval, grams CO2e per kWh"),
  metric(METRIC.exportFailures, "counter", UNIT.failures, [ATTR.exporter, ATTR.errorType], "Failed metric exports since start, by exporter and kind (arrives with the next successful export)"),
  // The agent's own health (`powerprint agent` only): what its dashboard panels read.
  metric(METRIC.agentTickDuration, "gauge", UNIT.seconds, [], "How long the agent's last sampling tick took (process table, devices, attribution, ledger), seconds"),
  metric(METRIC.agentTicksSkipped, "counter", UNIT.ticks, [], "Sampling ticks skipped because the previous one was still running (never stacked)"),
  metric(METRIC.agentSourceFailures, "counter", UNIT.failures, [ATTR.source, ATTR.errorType], "Failed or skipped reads of the agent's sources (a collector, the process table, the grid), by source and kind: timeout (past the read deadline), error"),
  metric(METRIC.agentSourceHung, "gauge", "{read}", [ATTR.source], "Reads of the source past their deadline and still unanswered: 1 while it hangs (it is not read again until it answers; /healthz answers 503), else 0"),
  metric(METRIC.agentJobs, "gauge", UNIT.jobs, [ATTR.jobState], "Jobs the agent holds, live and finished (retained for --retention)"),
  metric(METRIC.agentJobsDropped, "counter", UNIT.jobs, [ATTR.reason], "Jobs the agent dropped: after their --retention, before it (more than --max-finished-jobs finished), or never tracked (more than --max-jobs held)"),
  metric(METRIC.processCpuTime, "counter", UNIT.seconds, [ATTR.cpuMode], "CPU time of the agent process itself (OTel process.cpu.time), seconds"),
  metric(METRIC.processMemoryUsage, "gauge", UNIT.bytes, [], "Resident memory of the agent process itself (OTel process.memory.usage: RSS), bytes"),
];

/** Attribute keys a --tag may not use: powerprint sets them itself. */
export const RESERVED_JOB_ATTRIBUTE_KEYS: ReadonlySet<string> = new Set<string>([
  ATTR.jobId,
  ATTR.jobName,
  ATTR.hwType,
  ATTR.hwId,
  ATTR.hwName,
  ATTR.hwParent,
  ATTR.gpuShared,
  ATTR.phase,
  ATTR.bucket,
  ATTR.genAiRequestModel,
  ATTR.genAiTokenType,
  ATTR.servingState,
]);
