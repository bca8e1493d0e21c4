/**
 * Console exporter for debugging (`--otlp console`): the same OTel metrics as OTLP, printed as
 * readable lines to a stream (stderr in the CLI: the wrapped command owns stdout). The OTel SDK's
 * ConsoleMetricExporter is not used because it writes to stdout with console.dir.
 */
import { hrTimeToMilliseconds, ExportResultCode, type ExportResult } from "@opentelemetry/core";
import {
  AggregationTemporality,
  DataPointType,
  type PushMetricExporter,
  type ResourceMetrics,
} from "@opentelemetry/sdk-metrics";
import type { Attributes } from "@opentelemetry/api";
import { createPeriodicExporter, type MeterExporter, type OtelDeps } from "./otel.js";

function formatAttributes(attributes: Attributes): string {
  const parts = Object.entries(attributes).map(([key, value]) => `${key}=${JSON.stringify(value)}`);
  return parts.length > 0 ? `{${parts.join(",")}}` : "";
}

/**
 * Formats one collection as text: a header line with the time and service.name, then one line per
 * data point: `name{attr="v",...} value unit`. Only sums and gauges are printed (powerprint exports
 * no histograms).
 */
export function formatResourceMetrics(metrics: ResourceMetrics): string {
  const lines: string[] = [];
  const service = metrics.resource.attributes["service.name"];
  let timeMillis = 0;
  for (const scope of metrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.dataPointType !== DataPointType.SUM && metric.dataPointType !== DataPointType.GAUGE) continue;
      for (const point of metric.dataPoints) {
        timeMillis = Math.max(timeMillis, hrTimeToMilliseconds(point.endTime));
        lines.push(`  ${metric.descriptor.name}${formatAttributes(point.attributes)} ${point.value} ${metric.descriptor.unit}`);
      }
    }
  }
  const when = timeMillis > 0 ? new Date(timeMillis).toISOString() : new Date().toISOString();
  return [`powerprint metrics ${when} service.name=${String(service)}`, ...lines].join("\n") + "\n";
}

/** A PushMetricExporter printing formatResourceMetrics() to `stream`. Cumulative temporality. */
export class StreamMetricExporter implements PushMetricExporter {
  constructor(private readonly stream: NodeJS.WritableStream) {}

  export(metrics: ResourceMetrics, resultCallback: (result: ExportResult) => void): void {
    try {
      this.stream.write(formatResourceMetrics(metrics));
      resultCallback({ code: ExportResultCode.SUCCESS });
    } catch (err) {
      resultCallback({ code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) });
    }
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}

  selectAggregationTemporality(): AggregationTemporality {
    return AggregationTemporality.CUMULATIVE;
  }
}

/** The console exporter ("console"): prints every `exportIntervalMillis` and once at shutdown. */
export function createConsoleExporter(
  settings: { exportIntervalMillis: number; stream?: NodeJS.WritableStream },
  deps: OtelDeps,
): MeterExporter {
  return createPeriodicExporter(
    "console",
    new StreamMetricExporter(settings.stream ?? process.stderr),
    { exportIntervalMillis: settings.exportIntervalMillis, timeoutMillis: 5000, target: "stderr" },
    deps,
  );
}
