/**
 * The one reader of powerprint's environment (shaped after OpenTelemetry JS's
 * `platform/node/environment.ts`): every variable powerprint's own behaviour depends on is named
 * in {@link ENV_VARIABLES}, read here once per command, and handed down as a typed, frozen
 * {@link Environment}. Nothing below the CLI reads `process.env`; the config builders of
 * src/config validate the values and name the variable in each error.
 *
 * (The wrapped command's environment is another matter: `run` passes the process's environment
 * on to it, and job sources read CUDA_VISIBLE_DEVICES of the job's processes from /proc.)
 */

import { nonBlank } from "./values.js";

/** Every variable read, with what it sets (docs/ and `--help` name the same). */
export const ENV_VARIABLES = {
  // ---- hardware sources (collectors) ----
  POWERPRINT_SYSFS_ROOT: "directory holding sys/ (RAPL, hwmon, DRM), e.g. /host in a container",
  POWERPRINT_DEV_ROOT: "directory holding dev/ where NVIDIA device nodes are looked for",
  POWERPRINT_NVML_LIBRARY: "path of libnvidia-ml.so.1",
  POWERPRINT_NVIDIA_SMI: "the nvidia-smi command",
  POWERPRINT_CPU_TDP_WATTS: "TDP of one CPU package for the CPU model, W",
  PATH: "where nvidia-smi is looked for when no NVIDIA device node is there (WSL2, containers)",
  LD_LIBRARY_PATH: "where libnvidia-ml.so.1 is looked for when no NVIDIA device node is there",
  // ---- run's job cgroup ----
  POWERPRINT_CGROUP_VERSION: "which cgroup hierarchy run tries: auto, v2, v1",
  // ---- grid providers (credentials only from here, never flags) ----
  ELECTRICITYMAPS_API_KEY: "Electricity Maps API key",
  POWERPRINT_ELECTRICITYMAPS_URL: "Electricity Maps base URL",
  WATTTIME_USERNAME: "WattTime user",
  WATTTIME_PASSWORD: "WattTime password (not trimmed)",
  POWERPRINT_WATTTIME_URL: "WattTime base URL",
  POWERPRINT_UK_CARBON_INTENSITY_URL: "UK Carbon Intensity API base URL",
  CARBON_AWARE_SDK_URL: "Carbon Aware SDK WebAPI base URL",
  // ---- OpenTelemetry (the SDK is handed values, it reads none itself) ----
  OTEL_METRICS_EXPORTER: "otlp, prometheus, console or none (comma-separated)",
  OTEL_EXPORTER_OTLP_ENDPOINT: "OTLP base endpoint (/v1/metrics is appended)",
  OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: "OTLP metrics endpoint (used as is)",
  OTEL_EXPORTER_OTLP_HEADERS: "key=value,... headers of every OTLP request",
  OTEL_EXPORTER_OTLP_METRICS_HEADERS: "key=value,... headers of metrics requests",
  OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf or http/json",
  OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/protobuf or http/json (metrics)",
  OTEL_EXPORTER_OTLP_TIMEOUT: "OTLP request timeout, ms",
  OTEL_EXPORTER_OTLP_METRICS_TIMEOUT: "OTLP request timeout of metrics, ms",
  OTEL_EXPORTER_OTLP_COMPRESSION: "none or gzip",
  OTEL_EXPORTER_OTLP_METRICS_COMPRESSION: "none or gzip (metrics)",
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: "cumulative, delta or lowmemory",
  OTEL_METRIC_EXPORT_INTERVAL: "OTLP/console export interval, ms",
  OTEL_EXPORTER_PROMETHEUS_HOST: "Prometheus endpoint host",
  OTEL_EXPORTER_PROMETHEUS_PORT: "Prometheus endpoint port",
  OTEL_RESOURCE_ATTRIBUTES: "key=value,... resource attributes",
  OTEL_SERVICE_NAME: "service.name",
  // ---- who the job is (schedulers, Kubernetes downward API) ----
  SLURM_JOB_ID: "Slurm job id",
  SLURM_ARRAY_JOB_ID: "Slurm array job id",
  SLURM_ARRAY_TASK_ID: "Slurm array task id",
  SLURM_JOB_NAME: "Slurm job name",
  TORCHELASTIC_RUN_ID: "torchrun rendezvous id",
  K8S_POD_NAME: "downward API: the pod's name",
  K8S_POD_UID: "downward API: the pod's UID",
  K8S_JOB_NAME: "downward API: the Job's name (label batch.kubernetes.io/job-name)",
  K8S_NAMESPACE_NAME: "downward API: the pod's namespace",
  K8S_POD_NAMESPACE: "downward API: the pod's namespace (older name)",
  K8S_NODE_NAME: "downward API: the node's name (resource attribute)",
  NODE_NAME: "the node's name (agent node mode, probe)",
  KUBERNETES_SERVICE_HOST: "set in every Kubernetes pod's containers: agent pod mode runs inside a pod (src/agent/pod-sandbox.ts)",
} as const;

/** Name of a variable powerprint reads. */
export type EnvName = keyof typeof ENV_VARIABLES;

/**
 * The environment as read: each known variable's value, blanks trimmed (a blank value is unset),
 * except WATTTIME_PASSWORD which is kept as given. Frozen and prototype-free.
 */
export type Environment = { readonly [K in EnvName]?: string } & { readonly [ENVIRONMENT]: true };

/** Brand of an Environment (a read one is not read again). */
const ENVIRONMENT: unique symbol = Symbol("powerprint.environment");

/** Variables whose value is used exactly as given (a password may begin or end with a blank). */
const UNTRIMMED: ReadonlySet<EnvName> = new Set(["WATTTIME_PASSWORD"]);

/** Any source of variables: `process.env`, a test's object, or an Environment already read. */
export type EnvSource = Readonly<Record<string, string | undefined>> | Environment;

/** The value of a variable: trimmed, undefined when unset or blank (the one rule for every variable). */
export function envValue(source: Readonly<Record<string, string | undefined>>, name: string): string | undefined {
  return nonBlank(source[name]);
}

/**
 * Reads every known variable of `source` (the CLI's action hands in `process.env`) once. Passing an
 * Environment returns it as is, so builders may take either.
 */
export function readEnvironment(source: EnvSource): Environment {
  if ((source as Environment)[ENVIRONMENT]) return source as Environment;
  const raw = source as Readonly<Record<string, string | undefined>>;
  const out = Object.create(null) as Record<string, unknown>;
  for (const name of Object.keys(ENV_VARIABLES) as EnvName[]) {
    const value = UNTRIMMED.has(name) ? raw[name] || undefined : envValue(raw, name);
    if (value !== undefined) out[name] = value;
  }
  Object.defineProperty(out, ENVIRONMENT, { value: true, enumerable: false });
  return Object.freeze(out) as unknown as Environment;
}

/** The first set variable of `names` (signal-specific first), with its name. */
export function firstEnv(env: Environment, names: readonly EnvName[]): { name: EnvName; value: string } | undefined {
  for (const name of names) {
    const value = env[name];
    if (value !== undefined) return { name, value };
  }
  return undefined;
}
