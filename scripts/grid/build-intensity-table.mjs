#!/usr/bin/env node
// Builds data/grid_intensity.csv from an Our World in Data "carbon intensity of electricity"
// extract (columns country,iso_code,year,carbon_intensity_elec; OWID / Ember / Energy Institute,
// CC BY 4.0). Keeps the latest year per country, adds the ISO 3166-1 alpha-2 code, keeps the
// World row (zone WORLD) and the EU-27 aggregate (zone EU).
// Usage: node scripts/grid/build-intensity-table.mjs INPUT.csv > data/grid_intensity.csv
// This script is a build-time tool: the program never reads the input file.
import { readFileSync } from "node:fs";

// ISO 3166-1 alpha-3 → alpha-2, for the codes that appear in the OWID file.
// OWID_KOS (Kosovo) maps to the user-assigned code XK used by the EU and most APIs.
const ISO3_TO_ISO2 = {
  ABW: "AW", AFG: "AF", AGO: "AO", ALB: "AL", ARE: "AE", ARG: "AR", ARM: "AM", ASM: "AS", ATG: "AG",
  AUS: "AU", AUT: "AT", AZE: "AZ", BDI: "BI", BEL: "BE", BEN: "BJ", BFA: "BF", BGD: "BD", BGR: "BG",
  BHR: "BH", BHS: "BS", BIH: "BA", BLR: "BY", BLZ: "BZ", BMU: "BM", BOL: "BO", BRA: "BR", BRB: "BB",
  BRN: "BN", BTN: "BT", BWA: "BW", CAF: "CF", CAN: "CA", CHE: "CH", CHL: "CL", CHN: "CN", CIV: "CI",
  CMR: "CM", COD: "CD", COG: "CG", COK: "CK", COL: "CO", COM: "KM", CPV: "CV", CRI: "CR", CUB: "CU",
  CYM: "KY", CYP: "CY", CZE: "CZ", DEU: "DE", DJI: "DJ", DMA: "DM", DNK: "DK", DOM: "DO", DZA: "DZ",
  ECU: "EC", EGY: "EG", ERI: "ER", ESP: "ES", EST: "EE", ETH: "ET", FIN: "FI", FJI: "FJ", FLK: "FK",
  FRA: "FR", FRO: "FO", GAB: "GA", GBR: "GB", GEO: "GE", GHA: "GH", GIB: "GI", GIN: "GN", GLP: "GP",
  GMB: "GM", GNB: "GW", GNQ: "GQ", GRC: "GR", GRD: "GD", GRL: "GL", GTM: "GT", GUF: "GF", GUM: "GU",
  GUY: "GY", HKG: "HK", HND: "HN", HRV: "HR", HTI: "HT", HUN: "HU", IDN: "ID", IND: "IN", IRL: "IE",
  IRN: "IR", IRQ: "IQ", ISL: "IS", ISR: "IL", ITA: "IT", JAM: "JM", JOR: "JO", JPN: "JP", KAZ: "KZ",
  KEN: "KE", KGZ: "KG", KHM: "KH", KIR: "KI", KNA: "KN", KOR: "KR", KWT: "KW", LAO: "LA", LBN: "LB",
  LBR: "LR", LBY: "LY", LCA: "LC", LKA: "LK", LSO: "LS", LTU: "LT", LUX: "LU", LVA: "LV", MAC: "MO",
  MAR: "MA", MDA: "MD", MDG: "MG", MDV: "MV", MEX: "MX", MKD: "MK", MLI: "ML", MLT: "MT", MMR: "MM",
  MNE: "ME", MNG: "MN", MOZ: "MZ", MRT: "MR", MSR: "MS", MTQ: "MQ", MUS: "MU", MWI: "MW", MYS: "MY",
  NAM: "NA", NCL: "NC", NER: "NE", NGA: "NG", NIC: "NI", NLD: "NL", NOR: "NO", NPL: "NP", NRU: "NR",
  NZL: "NZ", OMN: "OM", OWID_KOS: "XK", PAK: "PK", PAN: "PA", PER: "PE", PHL: "PH", PNG: "PG",
  POL: "PL", PRI: "PR", PRK: "KP", PRT: "PT", PRY: "PY", PSE: "PS", PYF: "PF", QAT: "QA", REU: "RE",
  ROU: "RO", RUS: "RU", RWA: "RW", SAU: "SA", SDN: "SD", SEN: "SN", SGP: "SG", SHN: "SH", SLB: "SB",
  SLE: "SL", SLV: "SV", SOM: "SO", SPM: "PM", SRB: "RS", SSD: "SS", STP: "ST", SUR: "SR", SVK: "SK",
  SVN: "SI", SWE: "SE", SWZ: "SZ", SYC: "SC", SYR: "SY", TCA: "TC", TCD: "TD", TGO: "TG", THA: "TH",
  TJK: "TJ", TKM: "TM", TLS: "TL", TON: "TO", TTO: "TT", TUN: "TN", TUR: "TR", TWN: "TW", TZA: "TZ",
  UGA: "UG", UKR: "UA", URY: "UY", USA: "US", UZB: "UZ", VCT: "VC", VEN: "VE", VGB: "VG", VIR: "VI",
  VNM: "VN", VUT: "VU", WSM: "WS", YEM: "YE", ZAF: "ZA", ZMB: "ZM", ZWE: "ZW",
};
// Aggregates kept, by their OWID country name → (zone, iso3 column).
const AGGREGATES = { World: ["WORLD", "OWID_WRL"], "European Union (27)": ["EU", "OWID_EU27"] };

const input = process.argv[2];
if (!input) {
  console.error("usage: build-intensity-table.mjs INPUT.csv");
  process.exit(2);
}
const lines = readFileSync(input, "utf8").trim().split(/\r?\n/);
if (lines[0] !== "country,iso_code,year,carbon_intensity_elec") throw new Error(`unexpected header: ${lines[0]}`);
const latest = new Map();
for (const line of lines.slice(1)) {
  const [country, iso3, yearText, valueText] = line.split(",");
  if (valueText === undefined || valueText === "") continue;
  let zone, code3;
  if (AGGREGATES[country]) {
    [zone, code3] = AGGREGATES[country];
  } else if (iso3) {
    zone = ISO3_TO_ISO2[iso3];
    if (!zone) throw new Error(`no alpha-2 code for ${iso3} (${country})`);
    code3 = iso3;
  } else continue;
  const year = Number(yearText);
  const prev = latest.get(zone);
  if (!prev || year > prev.year) latest.set(zone, { zone, code3, country, year, value: Number(valueText) });
}
const out = ["zone,iso3,country,year,intensity_g_per_kwh"];
for (const r of [...latest.values()].sort((a, b) => a.zone.localeCompare(b.zone))) {
  const name = r.country.includes(",") ? `"${r.country}"` : r.country;
  out.push(`${r.zone},${r.code3},${name},${r.year},${Number(r.value.toFixed(3))}`);
}
process.stdout.write(out.join("\n") + "\n");
