/**
 * Checks for deploy/grafana/powerprint.json: Grafana's dashboard JSON model (the `Dashboard` type
 * @grafana/schema ships, raw/dashboard/x, turned into a JSON schema with additionalProperties:
 * false), Prometheus targets (Grafana's Prometheus query fields), PromQL that parses with
 * Prometheus' own lezer grammar, and the queries with Grafana's variables substituted.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { parser } from "@prometheus-io/lezer-promql";
import { Ajv } from "ajv";
import { z } from "zod";

/** A Prometheus target of a panel (the fields Grafana's Prometheus data source stores). */
export const prometheusTarget = z.strictObject({
  // DataQuery (@grafana/schema common): refId, datasource, hide, queryType.
  refId: z.string().min(1),
  datasource: z.strictObject({ type: z.literal("prometheus"), uid: z.string() }).optional(),
  hide: z.boolean().optional(),
  queryType: z.string().optional(),
  // Prometheus data query (Grafana's prometheus dataquery: expr, legendFormat, instant, range, format, ...).
  expr: z.string().min(1),
  legendFormat: z.string().optional(),
  instant: z.boolean().optional(),
  range: z.boolean().optional(),
  format: z.enum(["time_series", "table", "heatmap"]).optional(),
  editorMode: z.enum(["code", "builder"]).optional(),
  interval: z.string().optional(),
  intervalFactor: z.number().optional(),
  exemplar: z.boolean().optional(),
});

let dashboardValidator: ((value: unknown) => string[]) | undefined;

/** Problems of a dashboard against Grafana's schema (from @grafana/schema's Dashboard type). */
export async function dashboardSchemaProblems(dashboard: unknown): Promise<string[]> {
  if (!dashboardValidator) {
    const { createGenerator } = await import("ts-json-schema-generator");
    const pkg = createRequire(import.meta.url).resolve("@grafana/schema/package.json");
    const schema = createGenerator({
      path: join(dirname(pkg), "dist", "types", "raw", "dashboard", "x", "types.gen.d.ts"),
      type: "Dashboard",
      skipTypeCheck: true,
      expose: "all",
      additionalProperties: false,
      jsDoc: "none",
    }).createSchema("Dashboard");
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    dashboardValidator = (value) =>
      validate(value)
        ? []
        : (validate.errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message}${e.keyword === "additionalProperties" ? `: ${(e.params as { additionalProperty: string }).additionalProperty}` : ""}`);
  }
  return dashboardValidator(dashboard);
}

/** One panel query. */
export interface PanelQuery {
  panel: string;
  refId: string;
  expr: string;
}

interface PanelLike {
  type: string;
  title?: string;
  targets?: unknown[];
  panels?: PanelLike[];
}

/** Every target of every panel (rows' nested panels included). */
export function panelQueries(dashboard: { panels?: PanelLike[] }): PanelQuery[] {
  const out: PanelQuery[] = [];
  const visit = (panels: PanelLike[]) => {
    for (const p of panels) {
      for (const t of (p.targets ?? []) as { refId: string; expr: string }[]) out.push({ panel: p.title ?? p.type, refId: t.refId, expr: t.expr });
      if (p.panels) visit(p.panels);
    }
  };
  visit(dashboard.panels ?? []);
  return out;
}

/** Targets that do not have the Prometheus target's shape. */
export function targetProblems(dashboard: { panels?: PanelLike[] }): string[] {
  const problems: string[] = [];
  const visit = (panels: PanelLike[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) {
        const r = prometheusTarget.safeParse(t);
        if (!r.success) problems.push(`${p.title}: ${r.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`);
      }
      if (p.panels) visit(p.panels);
    }
  };
  visit(dashboard.panels ?? []);
  return problems;
}

/**
 * Grafana's variables replaced by values of the same shape (a range, a multi-value regex, a
 * number); a `$` left over is an unknown variable and fails.
 */
export function substitute(expr: string, values: Record<string, string>): string {
  const out = expr.replace(/\$(\w+)|\$\{(\w+)\}/g, (whole, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b) as string;
    if (!(name in values)) throw new Error(`unknown Grafana variable ${whole} in ${expr}`);
    return values[name];
  });
  return out;
}

/** Positions of lezer-promql error nodes in a query (empty: it parses). */
export function promqlErrors(expr: string): number[] {
  const errors: number[] = [];
  parser.parse(expr).iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
    },
  });
  return errors;
}

/** `label_values(SELECTOR, LABEL)` of a query variable. */
export function labelValuesQuery(query: string): { selector: string; label: string } {
  const m = /^label_values\((.*),\s*([a-zA-Z_]\w*)\)$/.exec(query.trim());
  if (!m) throw new Error(`not a label_values(selector, label) query: ${query}`);
  return { selector: m[1], label: m[2] };
}
