/**
 * The registry of agent modes (job discovery): each mode is one table entry `{ flags, parse,
 * create, probe }`, so adding a mode is one file and one line (src/agent/modes/index.ts), and
 * `agent --mode`, `probe --agent` and their flags all come from here. See docs/development.md.
 */
import type { Collector, Logger } from "../../core/contracts.js";
import type { Environment } from "../../config/env.js";
import type { DiscoveringSource } from "../lifecycle.js";

/** One flag of a mode, declared on `agent` (and, with `probe`, on `probe`). */
export interface ModeFlag {
  /** Commander's flag syntax: "--match-cmdline <regex>"; the parsed value is the camelCase key. */
  flags: string;
  description: string;
  default?: string;
  /** Also a flag of `probe --agent` (what the mode would find needs it). */
  probe?: boolean;
  /**
   * Given with another --mode it is an error (UsageError naming it: "only applies to --mode
   * NAME"); a string adds a hint to that line.
   */
  exclusive?: boolean | string;
}

/** What a mode's parse() is given besides its flags. */
export interface ModeParseContext {
  env: Environment;
  /** Real job discovery is on (`agent` without --sim, or with an explicit --mode); false in `probe`. */
  realJobs: boolean;
  /** --node-name, else NODE_NAME. */
  nodeName?: string;
  /** Whether a flag (camelCase key) was left at its default (commander's value source). */
  isDefault(key: string): boolean;
}

/** What a mode's create() and probe() are given. */
export interface ModeContext {
  /** Directory holding the proc/ to read (validated). */
  procRoot: string;
  /** Directory holding the sys/ to read. */
  sysRoot: string;
  log: Logger;
  /** This host's name (os.hostname()). */
  hostName: string;
  /** --job-id / --job-name, when given. */
  identity: { jobId?: string; jobName?: string };
  /** The directory holding dev/ (POWERPRINT_DEV_ROOT, default "/"): GPU device nodes. */
  devRoot: string;
}

/** What a running mode adds to the agent. */
export interface ModeParts {
  /** The job source: finds its jobs and reports them in each sample (none: nowhere to look; all is `system`). */
  source?: DiscoveringSource;
  /** Wraps the devices (pod mode: only the GPUs the training container sees). */
  collectors?(collectors: Collector[]): Collector[];
  /** A training-loop marks file and the job its phases belong to. */
  marks?: { path: string; jobId: string };
  /** The mode's one job, if it has a single one (pod): --work-from's units of work are its; else the newest live job's. */
  jobId?: string;
  /** Each job's own units-of-work endpoint, when the mode finds it itself (node: the pod's powerprint.io/work-from annotation). */
  workUrls?: (jobId: string) => URL | undefined;
  /** Runs before the first sample (bounded: node mode's first pod list). */
  start?(): Promise<void>;
  /** Runs at the agent's stop, before the final sample. */
  stop?(): void;
}

/** What `probe --agent` says about one mode. */
export interface ModeProbe {
  mode: string;
  /** Whether the mode would find jobs here now. */
  usable: boolean;
  findings: string[];
}

/** One agent mode. `C` is its validated config (from its flags). */
export interface AgentMode<C = unknown> {
  name: string;
  /** What it discovers, for --mode's help: "sidecar with shareProcessNamespace". */
  summary: string;
  flags: readonly ModeFlag[];
  /** Why --work-from does not apply to this mode (absent: it does). */
  noWorkFrom?: string;
  /** Validates the mode's flags (UsageError naming the flag). */
  parse(flags: Readonly<Record<string, unknown>>, ctx: ModeParseContext): C;
  /**
   * `agent`'s last check, every flag being valid: where this host makes the mode count the wrong
   * processes, a UsageError (pod mode outside a pod's shared PID namespace: src/agent/pod-sandbox.ts).
   */
  precheck?(config: C, ctx: { procRoot: string; env: Environment }): void;
  /** Starts discovering (never throws for runtime trouble: a mode that finds nothing says so). */
  create(config: C, ctx: ModeContext): ModeParts | Promise<ModeParts>;
  /** What the mode would find here now, without starting it. */
  probe(config: C, ctx: ModeContext): ModeProbe | Promise<ModeProbe>;
}

// Each entry's C is its own; the registry holds them opaquely.
type AnyMode = AgentMode<any>;
const modes = new Map<string, AnyMode>();

/** Adds a mode (its name must be new). Call before the CLI is built: its flags are declared then. */
export function registerAgentMode<C>(mode: AgentMode<C>): void {
  if (modes.has(mode.name)) throw new Error(`agent mode '${mode.name}' is registered already`);
  modes.set(mode.name, mode as AnyMode);
}

/** The registered modes, in registration order. */
export function agentModes(): readonly AnyMode[] {
  return [...modes.values()];
}

/** The mode called `name`, if registered. */
export function agentMode(name: string): AnyMode | undefined {
  return modes.get(name);
}

/** "pod, node or selector": the registered names as --mode's errors list them. */
export function modeNames(): string {
  const names = [...modes.keys()];
  return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : (names[0] ?? "");
}

/** Commander's camelCase key of a flag ("--match-cmdline <regex>" → "matchCmdline"). */
export function flagKey(flag: ModeFlag): string {
  const long = /--([a-z0-9-]+)/i.exec(flag.flags)?.[1] ?? "";
  return long.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** The flag's long name ("--match-cmdline"). */
export function flagName(flag: ModeFlag): string {
  return /--[a-z0-9-]+/i.exec(flag.flags)?.[0] ?? flag.flags;
}
