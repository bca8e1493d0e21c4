/**
 * Static grid intensity: a per-country annual table (data/grid_intensity.csv, built from Our World
 * in Data's "carbon intensity of electricity", based on Ember and the Energy Institute, CC BY 4.0),
 * a fixed user-supplied value, and the world average.
 *
 * Annual averages are lifecycle-agnostic "average" factors (gCO2e per kWh generated); they ignore
 * hour-to-hour variation and imports, so they are a fallback, not a measurement.
 */
import { readFileSync } from "node:fs";
import { UsageError } from "../errors.js";
import { dataPath } from "../paths.js";
import type { IntensityProvider, IntensityReading } from "../core/contracts.js";

/** One row of data/grid_intensity.csv. */
export interface IntensityTableRow {
  /** ISO 3166-1 alpha-2 code (XK for Kosovo), or WORLD / EU for the aggregates. */
  zone: string;
  /** ISO 3166-1 alpha-3 code, or OWID's code for aggregates (OWID_WRL, OWID_EU27). */
  iso3: string;
  country: string;
  year: number;
  intensityGramsPerKwh: number;
}

/** Common names that are not ISO 3166-1 alpha-2 codes but people type them. */
const ALIASES: Record<string, string> = {
  UK: "GB", // ISO code of the United Kingdom is GB
  EL: "GR", // the EU's code for Greece
  KOS: "XK",
  XKX: "XK",
  OWID_KOS: "XK",
  WORLD: "WORLD",
  WLD: "WORLD",
  OWID_WRL: "WORLD",
  EU27: "EU",
  OWID_EU27: "EU",
};

interface Table {
  rows: IntensityTableRow[];
  byCode: Map<string, IntensityTableRow>;
}

const tables = new Map<string, Table>();

/** Parses the table's CSV text (header zone,iso3,country,year,intensity_g_per_kwh; country may be quoted). */
export function parseIntensityTable(text: string): IntensityTableRow[] {
  const lines = text.trim().split(/\r?\n/);
  if (lines[0]?.trim() !== "zone,iso3,country,year,intensity_g_per_kwh") {
    throw new Error(`grid intensity table: unexpected header '${lines[0]}'`);
  }
  const rows: IntensityTableRow[] = [];
  for (const [i, line] of lines.slice(1).entries()) {
    const m = /^([^,]+),([^,]+),("(?:[^"]|"")*"|[^,]*),(\d{4}),([0-9.]+)$/.exec(line.trim());
    if (!m) throw new Error(`grid intensity table: line ${i + 2} malformed: '${line}'`);
    const country = m[3].startsWith('"') ? m[3].slice(1, -1).replace(/""/g, '"') : m[3];
    rows.push({ zone: m[1], iso3: m[2], country, year: Number(m[4]), intensityGramsPerKwh: Number(m[5]) });
  }
  return rows;
}

function loadTable(path: string): Table {
  let table = tables.get(path);
  if (!table) {
    const rows = parseIntensityTable(readFileSync(path, "utf8"));
    const byCode = new Map<string, IntensityTableRow>();
    for (const row of rows) {
      byCode.set(row.zone, row);
      byCode.set(row.iso3, row);
    }
    table = { rows, byCode };
    tables.set(path, table);
  }
  return table;
}

function defaultTablePath(): string {
  return dataPath("grid_intensity.csv");
}

/**
 * Finds the table row for a zone: ISO alpha-2 or alpha-3 (any case), the aliases UK, EL, WORLD,
 * EU27, and provider sub-zones such as "US-CAL-CISO" or "DE-LU" (their country prefix, flagged
 * `subZone` so the caller can say it used a country-level value).
 */
export function lookupZone(
  zone: string,
  tablePath: string = defaultTablePath(),
): { row: IntensityTableRow; subZone: boolean } | undefined {
  const table = loadTable(tablePath);
  const code = zone.trim().toUpperCase();
  const direct = table.byCode.get((Object.hasOwn(ALIASES, code) ? ALIASES[code] : undefined) ?? code);
  if (direct) return { row: direct, subZone: false };
  // Provider zones look like "US-CAL-CISO", "AU-NSW", "GB-13": fall back to the country part.
  const prefix = /^([A-Z]{2,3})[-_]/.exec(code)?.[1];
  if (prefix) {
    const row = table.byCode.get((Object.hasOwn(ALIASES, prefix) ? ALIASES[prefix] : undefined) ?? prefix);
    if (row && row.zone !== "WORLD") return { row, subZone: true };
  }
  return undefined;
}

/** True when the static table has a value for `zone` (directly, by alias, or by its country prefix). */
export function isKnownZone(zone: string, tablePath?: string): boolean {
  return lookupZone(zone, tablePath) !== undefined;
}

/** Every row of the table (for `powerprint grid --list` style output and tests). */
export function intensityTableRows(tablePath: string = defaultTablePath()): readonly IntensityTableRow[] {
  return loadTable(tablePath).rows;
}

function unknownZone(zone: string): UsageError {
  return new UsageError(
    "--zone",
    `unknown zone '${zone}': use an ISO 3166 country code such as DE, FR, US (see data/grid_intensity.csv)`,
  );
}

function readingFromRow(zone: string, row: IntensityTableRow, subZone: boolean): IntensityReading {
  return {
    intensityGramsPerKwh: row.intensityGramsPerKwh,
    zone,
    source: "static-table",
    year: row.year,
    emissionFactorType: "average",
    note: subZone
      ? `annual average of ${row.country} (${row.zone}, ${row.year}) used for sub-zone ${zone}`
      : `annual average of ${row.country} (${row.year}), Our World in Data / Ember`,
  };
}

/**
 * The per-country annual table as an IntensityProvider (id "static-table"). `at(zone)` returns the
 * latest annual value with its `year`, whatever the time asked. An unknown zone throws a UsageError
 * naming --zone (a typo must stop the run, not silently become the world average).
 */
export function createStaticTableProvider(opts: { tablePath?: string } = {}): IntensityProvider {
  const tablePath = opts.tablePath ?? defaultTablePath();
  // Load eagerly so a missing or corrupt data file fails at start-up, not mid-run.
  loadTable(tablePath);
  return {
    id: "static-table",
    async at(zone: string): Promise<IntensityReading> {
      const found = lookupZone(zone, tablePath);
      if (!found) throw unknownZone(zone);
      return readingFromRow(zone, found.row, found.subZone);
    },
  };
}

/**
 * Synchronous lookup of the static table value for a zone, for the fallback chain; throws the
 * same UsageError as the provider for an unknown zone.
 */
export function staticReading(zone: string, tablePath?: string): IntensityReading {
  const found = lookupZone(zone, tablePath);
  if (!found) throw unknownZone(zone);
  return readingFromRow(zone, found.row, found.subZone);
}

/**
 * A fixed intensity given by the user (--intensity), gCO2e/kWh, for any zone and time (id "fixed").
 * Throws a UsageError naming --intensity for a negative or non-finite value.
 */
export function createFixedProvider(intensityGramsPerKwh: number): IntensityProvider {
  if (!Number.isFinite(intensityGramsPerKwh) || intensityGramsPerKwh < 0) {
    throw new UsageError("--intensity", `must be a number >= 0, got '${intensityGramsPerKwh}'`);
  }
  return {
    id: "fixed",
    async at(zone: string): Promise<IntensityReading> {
      return { intensityGramsPerKwh, zone, source: "fixed", note: "fixed value given with --intensity" };
    },
  };
}

/**
 * The world average of the static table (OWID "World" row, latest year): what powerprint uses when
 * nothing better is known. Marked source and fallback "world-average" so the summary names it.
 */
export function worldAverage(tablePath?: string): IntensityReading {
  const found = lookupZone("WORLD", tablePath);
  if (!found) throw new Error("grid intensity table has no WORLD row");
  return {
    intensityGramsPerKwh: found.row.intensityGramsPerKwh,
    zone: "WORLD",
    source: "world-average",
    fallback: "world-average",
    year: found.row.year,
    emissionFactorType: "average",
    note: `world average (${found.row.year}, Our World in Data / Ember): no zone or intensity given`,
  };
}
