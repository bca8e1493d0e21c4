/**
 * NVIDIA GPUs through `nvidia-smi -q -x`: the fallback when NVML cannot be loaded over FFI.
 *
 * The default runner is the node-nvidia-smi package, as the user asked: it spawns `nvidia-smi -q -x`
 * through /bin/sh (so `nvidia-smi` is resolved on PATH) and parses the XML with xml2js
 * ({ explicitArray: false, trim: true }; xml2js is pinned to 0.6 by package.json overrides). It
 * cannot take another command path or a timeout, so a `command` other than "nvidia-smi" is run with
 * execFile and the output parsed with xml2js and the very same options; both paths then go
 * through {@link parseNvidiaSmiLog}.
 *
 * nvidia-smi has no energy counter in its XML: every reading is power (method "power"), which the
 * pipeline integrates over time. One nvidia-smi at a time: a read() made while the previous call is
 * still running returns no readings (the tick is skipped, not stacked), and a call that outlasts
 * `timeoutMillis` makes its read() return nothing while the process is left to finish.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import type { Collector, DeviceInfo, DeviceReading, MigInstance, ProbeResult, ProcessUsage } from "../src/core/contracts.js";
import { CollectorError } from "../src/errors.js";

const require = createRequire(import.meta.url);

type XmlNode = unknown;
type NodeNvidiaSmi = (callback: (err: unknown, data?: XmlNode) => void) => void;
type Xml2jsParseString = (xml: string, options: object, callback: (err: unknown, result: XmlNode) => void) => void;

/** The options node-nvidia-smi passes to xml2js; the execFile path uses the same so both trees agree. */
const XML2JS_OPTIONS = { explicitArray: false, trim: true } as const;

/** One GPU as `nvidia-smi -q -x` describes it. Absent fields: the file said N/A, [Not Supported] or nothing. */
export interface NvidiaSmiGpu {
  /** Position in the XML, which follows nvidia-smi's (NVML's) device index. */
  index: number;
  /** PCI bus id, the `id` attribute of `<gpu>`. */
  busId?: string;
  model?: string;
  uuid?: string;
  /** Board power draw, watts. */
  powerWatts?: number;
  /** Where powerWatts came from, e.g. "gpu_power_readings/average_power_draw" or "power_readings/power_draw". */
  powerField?: string;
  /** `<fb_memory_usage>` total and used, bytes (MiB × 2^20). */
  memoryTotalBytes?: number;
  memoryUsedBytes?: number;
  /** `<utilization><gpu_util>` as 0..1. */
  utilization?: number;
  processes: NvidiaSmiProcess[];
  /** `<mig_mode><current_mig>` is Enabled. */
  migEnabled?: boolean;
  /** `<mig_devices>`: the GPU's MIG devices (only when MIG is on). */
  migDevices?: NvidiaSmiMigDevice[];
}

/** One `<mig_device>`. The XML names no profile and no slice count: its SMs are the only size it gives. */
export interface NvidiaSmiMigDevice {
  index: number;
  gpuInstanceId: number;
  computeInstanceId: number;
  /** `<device_attributes><shared><multiprocessor_count>`. */
  multiprocessorCount?: number;
  /** `<fb_memory_usage><total>`, bytes. */
  memoryTotalBytes?: number;
}

/** One `<process_info>`. */
export interface NvidiaSmiProcess {
  pid: number;
  /** "C" compute, "G" graphics, "C+G". */
  type?: string;
  name?: string;
  /** `<used_memory>`, bytes; absent when N/A (Windows WDDM). */
  memoryBytes?: number;
  /** MIG: `<gpu_instance_id>` / `<compute_instance_id>` (N/A without MIG: absent). */
  gpuInstanceId?: number;
  computeInstanceId?: number;
}

/** A parsed `nvidia-smi -q -x` document. */
export interface NvidiaSmiLog {
  driverVersion?: string;
  gpus: NvidiaSmiGpu[];
}

/** Text of an element as xml2js left it ({ explicitArray: false }): a string, or an object with `_` when it had attributes. */
function text(node: XmlNode): string | undefined {
  if (typeof node === "string") return node;
  if (node && typeof node === "object" && typeof (node as { _?: unknown })._ === "string") return (node as { _: string })._;
  return undefined;
}

/** Values nvidia-smi prints for "no value": these are absent, never zero. */
function present(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "" || /^\[?N\/A\]?$/i.test(v) || /^\[?Not Supported\]?$/i.test(v) || /^\[?Unknown Error\]?$/i.test(v) || v === "None") return undefined;
  return v;
}

function child(node: XmlNode, name: string): XmlNode {
  return node && typeof node === "object" ? (node as Record<string, XmlNode>)[name] : undefined;
}

function asList(node: XmlNode): XmlNode[] {
  if (node === undefined || node === null || typeof node === "string") return [];
  return Array.isArray(node) ? node : [node];
}

/** "691.61 W" → 691.61; unit must match when given. */
function number(node: XmlNode, unit?: string): number | undefined {
  const v = present(text(node));
  if (v === undefined) return undefined;
  const m = /^(-?\d+(?:\.\d+)?)\s*([A-Za-z%]*)$/.exec(v);
  if (!m) return undefined;
  if (unit !== undefined && m[2] !== unit) return undefined;
  return Number(m[1]);
}

const BYTES_PER_MIB = 2 ** 20;

function mebibytes(node: XmlNode): number | undefined {
  const n = number(node, "MiB");
  return n === undefined ? undefined : n * BYTES_PER_MIB;
}

/**
 * Power of one GPU across the three XML generations, first present wins:
 * `<gpu_power_readings>` (drivers 535+) average_power_draw, then instant_power_draw, then
 * power_draw; then legacy `<power_readings>` (≤ 525) power_draw. The 1 s average is preferred
 * over the instant value because readings are integrated at about 1 s intervals.
 * `<module_power_readings>` (whole module incl. CPU on Grace boards) is not the GPU's draw and is
 * not used.
 */
function power(gpu: XmlNode): { powerWatts?: number; powerField?: string } {
  for (const section of ["gpu_power_readings", "power_readings"]) {
    const s = child(gpu, section);
    if (!s) continue;
    for (const field of ["average_power_draw", "instant_power_draw", "power_draw"]) {
      const w = number(child(s, field), "W");
      if (w !== undefined) return { powerWatts: w, powerField: `${section}/${field}` };
    }
  }
  return {};
}

/** `<mig_mode>` and `<mig_devices>` of one `<gpu>` (DTD v11+; absent on boards without MIG). */
function migDevices(gpu: XmlNode): Pick<NvidiaSmiGpu, "migEnabled" | "migDevices"> {
  const mode = present(text(child(child(gpu, "mig_mode"), "current_mig")));
  if (mode === undefined) return {};
  const enabled = /^enabled$/i.test(mode);
  if (!enabled) return { migEnabled: false };
  const devices: NvidiaSmiMigDevice[] = [];
  for (const d of asList(child(child(gpu, "mig_devices"), "mig_device")).slice(0, 16)) {
    const index = number(child(d, "index"));
    const gpuInstanceId = number(child(d, "gpu_instance_id"));
    const computeInstanceId = number(child(d, "compute_instance_id"));
    if (index === undefined || gpuInstanceId === undefined || computeInstanceId === undefined) continue;
    const device: NvidiaSmiMigDevice = { index, gpuInstanceId, computeInstanceId };
    const sms = number(child(child(child(d, "device_attributes"), "shared"), "multiprocessor_count"));
    if (sms !== undefined) device.multiprocessorCount = sms;
    const total = mebibytes(child(child(d, "fb_memory_usage"), "total"));
    if (total !== undefined) device.memoryTotalBytes = total;
    devices.push(device);
  }
  return { migEnabled: true, migDevices: devices };
}

/** Turns the xml2js tree of `nvidia-smi -q -x` (options { explicitArray: false, trim: true }) into an {@link NvidiaSmiLog}. */
export function parseNvidiaSmiLog(tree: XmlNode): NvidiaSmiLog {
  const root = child(tree, "nvidia_smi_log");
  if (!root || typeof root !== "object") throw new CollectorError("nvidia-smi", "not an nvidia-smi -q -x document: no <nvidia_smi_log>");
  const gpus = asList(child(root, "gpu")).map((gpu, index): NvidiaSmiGpu => {
    const out: NvidiaSmiGpu = { index, processes: [] };
    const attrs = child(gpu, "$");
    const busId = text(child(attrs, "id"));
    if (busId) out.busId = busId;
    const model = present(text(child(gpu, "product_name")));
    if (model) out.model = model;
    const uuid = present(text(child(gpu, "uuid")));
    if (uuid) out.uuid = uuid;
    Object.assign(out, power(gpu));
    const fb = child(gpu, "fb_memory_usage");
    const total = mebibytes(child(fb, "total"));
    if (total !== undefined) out.memoryTotalBytes = total;
    const used = mebibytes(child(fb, "used"));
    if (used !== undefined) out.memoryUsedBytes = used;
    const util = number(child(child(gpu, "utilization"), "gpu_util"), "%");
    if (util !== undefined) out.utilization = util / 100;
    for (const p of asList(child(child(gpu, "processes"), "process_info"))) {
      const pid = number(child(p, "pid"));
      if (pid === undefined) continue;
      const proc: NvidiaSmiProcess = { pid };
      const type = present(text(child(p, "type")));
      if (type) proc.type = type;
      const name = present(text(child(p, "process_name")));
      if (name) proc.name = name;
      const memory = mebibytes(child(p, "used_memory"));
      if (memory !== undefined) proc.memoryBytes = memory;
      const gi = number(child(p, "gpu_instance_id"));
      const ci = number(child(p, "compute_instance_id"));
      if (gi !== undefined) proc.gpuInstanceId = gi;
      if (ci !== undefined) proc.computeInstanceId = ci;
      out.processes.push(proc);
    }
    Object.assign(out, migDevices(gpu));
    return out;
  });
  const driverVersion = present(text(child(root, "driver_version")));
  return driverVersion ? { driverVersion, gpus } : { gpus };
}

/** Parses the XML text of `nvidia-smi -q -x` (xml2js, synchronously, with node-nvidia-smi's options). Throws on malformed XML. */
export function parseNvidiaSmiXml(xml: string): NvidiaSmiLog {
  const parseString = require("xml2js").parseString as Xml2jsParseString;
  let result: { tree?: XmlNode; err?: unknown } | undefined;
  parseString(xml, XML2JS_OPTIONS, (err, tree) => {
    result = { err, tree };
  });
  // xml2js calls back synchronously unless { async: true }; guard against a future change.
  if (!result) throw new CollectorError("nvidia-smi", "xml2js did not parse synchronously");
  // One typed error for any malformed document, with xml2js's own as the cause.
  if (result.err) throw new CollectorError("nvidia-smi", `malformed XML: ${String((result.err as Error)?.message ?? result.err).split("\n")[0]}`, { cause: result.err });
  return parseNvidiaSmiLog(result.tree);
}

/**
 * Readings from a parsed log: deviceId "gpu<index>", kind "gpu", source "nvidia-smi", method
 * "power" with powerWatts and a note naming the field; processes from `<processes>` with
 * processUsageMethod "equal" (the XML has no per-process utilisation). A GPU whose power is N/A
 * gives no reading (nothing to measure); probe() says why.
 */
export function nvidiaSmiReadings(log: NvidiaSmiLog): DeviceReading[] {
  const readings: DeviceReading[] = [];
  for (const gpu of log.gpus) {
    if (gpu.powerWatts === undefined) continue;
    const processes: ProcessUsage[] = gpu.processes.map((p) => (p.memoryBytes !== undefined ? { pid: p.pid, memoryBytes: p.memoryBytes } : { pid: p.pid }));
    const reading: DeviceReading = {
      deviceId: `gpu${gpu.index}`,
      kind: "gpu",
      source: "nvidia-smi",
      index: gpu.index,
      powerWatts: gpu.powerWatts,
      method: "power",
      processes,
      processUsageMethod: "equal",
      status: "ok",
      note: `nvidia-smi has no energy counter: integrating power (${gpu.powerField})`,
    };
    if (gpu.model !== undefined) reading.model = gpu.model;
    if (gpu.uuid !== undefined) reading.uuid = gpu.uuid;
    if (gpu.utilization !== undefined) reading.utilization = gpu.utilization;
    if (gpu.migEnabled && gpu.migDevices && gpu.migDevices.length > 0) withMig(reading, gpu, gpu.migDevices);
    readings.push(reading);
  }
  return readings;
}

/**
 * A MIG GPU's instances from `<mig_devices>`, its processes placed by their instance ids. The XML
 * gives no slice counts: each instance is weighed by its SMs (a slice's worth of SMs is fixed on a
 * GPU, so this is the slice share up to rounding), and the unallocated slices cannot be seen (their
 * idle share is spread over the instances), said in the note.
 */
function withMig(reading: DeviceReading, gpu: NvidiaSmiGpu, devices: NvidiaSmiMigDevice[]): void {
  const instances: MigInstance[] = devices.map((d) => {
    const instance: MigInstance = {
      deviceId: `gpu${gpu.index}/gi${d.gpuInstanceId}/ci${d.computeInstanceId}`,
      model: `${gpu.model ?? "NVIDIA GPU"} MIG${d.multiprocessorCount !== undefined ? ` (${d.multiprocessorCount} SMs)` : ""}`,
      gpuInstanceId: d.gpuInstanceId,
      computeInstanceId: d.computeInstanceId,
      sliceCount: d.multiprocessorCount ?? 1,
      processes: [],
    };
    if (d.multiprocessorCount !== undefined) instance.multiprocessorCount = d.multiprocessorCount;
    return instance;
  });
  const own: ProcessUsage[] = [];
  for (const p of gpu.processes) {
    const usage: ProcessUsage = p.memoryBytes !== undefined ? { pid: p.pid, memoryBytes: p.memoryBytes } : { pid: p.pid };
    const target =
      instances.find((i) => i.gpuInstanceId === p.gpuInstanceId && i.computeInstanceId === p.computeInstanceId) ??
      instances.find((i) => i.gpuInstanceId === p.gpuInstanceId);
    (target ? target.processes : own).push(usage);
  }
  reading.processes = own;
  reading.mig = { instances };
  reading.note = `${reading.note}; MIG: ${instances.length} instances from <mig_devices>, weighed by their SMs (the XML has no slice counts or GPM activity)`;
}

/** Options of {@link createNvidiaSmiCollector}. */
export interface NvidiaSmiCollectorOptions {
  /** "nvidia-smi" (default: node-nvidia-smi, resolved on PATH) or a path/name run with execFile. */
  command?: string;
  /** A call running longer makes its read() return nothing (default 10 000 ms). */
  timeoutMillis?: number;
}

/** The nvidia-smi collector; `skippedReads` counts reads skipped because a call was still running. */
export interface NvidiaSmiCollector extends Collector {
  readonly skippedReads: number;
}

type RunOutcome = { status: "ok"; log: NvidiaSmiLog } | { status: "error"; reason: string; notFound: boolean };

function describeError(err: unknown): { reason: string; notFound: boolean } {
  const e = err as { code?: unknown; message?: unknown } | string;
  const message = typeof e === "string" ? e : String((e as { message?: unknown })?.message ?? e);
  // exec through /bin/sh: exit 127 "not found"; execFile: ENOENT.
  const notFound = (typeof e === "object" && (e?.code === "ENOENT" || e?.code === 127)) || /not found|ENOENT/i.test(message);
  return { reason: message.trim().split("\n")[0], notFound };
}

/**
 * Creates the nvidia-smi collector (id "nvidia-smi"). See the module comment for the runner,
 * the single-flight rule and the timeout.
 */
export function createNvidiaSmiCollector(opts: NvidiaSmiCollectorOptions = {}): NvidiaSmiCollector {
  const command = opts.command ?? "nvidia-smi";
  const timeoutMillis = opts.timeoutMillis ?? 10_000;
  let inFlight: Promise<RunOutcome> | undefined;
  let skippedReads = 0;

  function runOnce(): Promise<RunOutcome> {
    return new Promise<RunOutcome>((resolve) => {
      const fail = (err: unknown) => resolve({ status: "error", ...describeError(err) });
      const parsedTree = (tree: XmlNode) => {
        try {
          resolve({ status: "ok", log: parseNvidiaSmiLog(tree) });
        } catch (err) {
          fail(err);
        }
      };
      if (command === "nvidia-smi") {
        const smi = require("node-nvidia-smi") as NodeNvidiaSmi;
        smi((err, data) => (err ? fail(err) : parsedTree(data)));
        return;
      }
      // The read gives up at timeoutMillis (the call keeps running and later reads skip); the call
      // itself is killed only at twice that, so the two timers never race.
      execFile(command, ["-q", "-x"], { timeout: 2 * timeoutMillis, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
        if (err) return fail(err);
        try {
          resolve({ status: "ok", log: parseNvidiaSmiXml(stdout) });
        } catch (parseErr) {
          fail(parseErr);
        }
      });
    });
  }

  /** Starts a call unless one is running; resolves undefined when skipped or timed out. */
  async function call(): Promise<RunOutcome | undefined> {
    if (inFlight) {
      skippedReads++;
      return undefined;
    }
    const running = runOnce();
    inFlight = running;
    void running.finally(() => {
      if (inFlight === running) inFlight = undefined;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMillis);
      // Never keep the process alive for this timer.
      (timer as { unref?: () => void }).unref?.();
    });
    try {
      return await Promise.race([running, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    id: "nvidia-smi",
    get skippedReads() {
      return skippedReads;
    },
    async probe(): Promise<ProbeResult> {
      if (inFlight) await inFlight.catch(() => undefined);
      const outcome = await call();
      if (!outcome) return { status: "unavailable", reason: `${command} -q -x did not answer within ${timeoutMillis} ms` };
      if (outcome.status === "error") {
        return outcome.notFound
          ? { status: "unavailable", reason: `${command} not found`, fix: "install the NVIDIA driver utilities (nvidia-smi) or put nvidia-smi on PATH" }
          : { status: "unavailable", reason: `${command} -q -x failed: ${outcome.reason}` };
      }
      const devices = outcome.log.gpus.map((gpu): DeviceInfo => {
        const info: DeviceInfo = {
          deviceId: `gpu${gpu.index}`,
          kind: "gpu",
          index: gpu.index,
          method: "power",
          energyCounter: false,
          detail:
            gpu.powerWatts !== undefined
              ? `power from <${gpu.powerField?.replace("/", "><")}>; no energy counter in nvidia-smi XML`
              : "power draw N/A on this board: no energy can be measured (device skipped)",
        };
        if (gpu.model !== undefined) info.model = gpu.model;
        if (gpu.uuid !== undefined) info.uuid = gpu.uuid;
        return info;
      });
      return { status: "ok", devices, note: `driver ${outcome.log.driverVersion ?? "unknown"}; nvidia-smi fallback (power only)` };
    },
    async read(): Promise<DeviceReading[]> {
      const outcome = await call();
      if (!outcome || outcome.status !== "ok") return [];
      return nvidiaSmiReadings(outcome.log);
    },
    async close(): Promise<void> {
      // Nothing held open; a call still running finishes on its own.
    },
  };
}
