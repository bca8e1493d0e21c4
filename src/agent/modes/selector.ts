/**
 * Selector mode (`agent --mode selector`): processes whose command line or environment match are
 * jobs (each matching process tree), on any host.
 */
import { UsageError } from "../../errors.js";
import { SelectorJobSource, parseSelector, type Selector } from "../selector-source.js";
import type { AgentMode } from "./registry.js";

export const selectorMode: AgentMode<Selector> = {
  name: "selector",
  summary: "--match-cmdline/--match-env",
  flags: [
    { flags: "--match-cmdline <regex>", description: "selector mode: processes whose command line matches (first capture group, if any, names the job)", probe: true, exclusive: true },
    { flags: "--match-env <key[=value]>", description: "selector mode: processes whose environment has KEY (with VALUE); the value names the job", probe: true, exclusive: true },
  ],
  parse(flags, ctx) {
    const selector = parseSelector({
      matchCmdline: typeof flags.matchCmdline === "string" ? flags.matchCmdline : undefined,
      matchEnv: typeof flags.matchEnv === "string" ? flags.matchEnv : undefined,
    });
    if (ctx.realJobs && !selector.cmdline && !selector.env) throw new UsageError("--mode", "selector needs --match-cmdline REGEX or --match-env KEY[=VALUE]");
    return selector;
  },
  // The agent reads other processes' command lines and environments off the event loop (they can block in the kernel).
  create: (selector, ctx) => ({ source: new SelectorJobSource({ procRoot: ctx.procRoot, selector, offLoop: { log: ctx.log } }) }),
  probe(selector, ctx) {
    if (!selector.cmdline && !selector.env) return { mode: "selector", usable: false, findings: ["needs --match-cmdline REGEX or --match-env KEY[=VALUE]"] };
    const source = new SelectorJobSource({ procRoot: ctx.procRoot, selector });
    // The first sample finds the trees, the second reports them.
    source.sample();
    const s = source.sample();
    const jobs = [...(s.jobs?.keys() ?? [])];
    return { mode: "selector", usable: jobs.length > 0, findings: [`${jobs.length} matching process tree job(s)${jobs.length ? `: ${jobs.slice(0, 10).join(", ")}${jobs.length > 10 ? ", ..." : ""}` : ""}`] };
  },
};
