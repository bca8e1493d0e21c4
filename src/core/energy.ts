import type { DeviceReading } from "./contracts.js";
import type { DeviceInterval } from "./types.js";
import { wattsOverMillisToJoules, joulesOverMillisToWatts } from "../units.js";
import { counterDeltaJoules } from "./counter.js";

/** Idle power configured for a device kind or id (from config/flags), watts. */
export interface IdleConfig {
  byDeviceId?: Record<string, number>;
  byKind?: Partial<Record<"cpu" | "gpu" | "memory", number>>;
}

interface DeviceState {
  lastTimeMillis: number;
  lastEnergyJoules?: number;
  lastPowerWatts?: number;
  lowestPowerWatts?: number;
}

/**
 * Turns successive device readings into per-interval energy. Counter devices: the counter delta
 * (wrap handled with the reading's counterRangeJoules; a reset without a known range falls back to
 * the power reading if any, and says so). Power and model devices: trapezoid integration of power
 * between readings. The first reading of a device only sets its baseline (no interval).
 */
export class EnergyIntegrator {
  private readonly states = new Map<string, DeviceState>();
  /** Notes about individual intervals (counter resets etc.), drained by the sampler. */
  readonly notes: string[] = [];

  constructor(private readonly idle: IdleConfig = {}) {}

  /** Returns the interval since the previous reading of this device, or undefined for the first one. */
  interval(reading: DeviceReading, timeMillis: number): DeviceInterval | undefined {
    const state = this.states.get(reading.deviceId);
    if (reading.status === "lost") {
      // A lost device contributes nothing further; keep its state so a recovery re-baselines.
      this.states.delete(reading.deviceId);
      return undefined;
    }
    if (!state) {
      this.states.set(reading.deviceId, {
        lastTimeMillis: timeMillis,
        lastEnergyJoules: reading.energyJoules,
        lastPowerWatts: reading.powerWatts,
      });
      return undefined;
    }
    const durationMillis = timeMillis - state.lastTimeMillis;
    if (durationMillis <= 0) return undefined;
    let energyJoules: number | undefined;
    let method = reading.method;
    if (reading.energyJoules !== undefined && state.lastEnergyJoules !== undefined) {
      energyJoules = counterDeltaJoules(state.lastEnergyJoules, reading.energyJoules, reading.counterRangeJoules);
      if (energyJoules === undefined) {
        // Counter went backwards with no known wrap range: a reset (driver reload, GPU reset).
        if (reading.powerWatts !== undefined) {
          energyJoules = wattsOverMillisToJoules(reading.powerWatts, durationMillis);
          method = "power";
          this.notes.push(`${reading.deviceId}: energy counter reset; this interval integrated from power`);
        } else {
          energyJoules = 0;
          this.notes.push(`${reading.deviceId}: energy counter reset and no power reading; interval counted as 0 J`);
        }
      }
    } else if (reading.powerWatts !== undefined) {
      const previous = state.lastPowerWatts ?? reading.powerWatts;
      energyJoules = wattsOverMillisToJoules((previous + reading.powerWatts) / 2, durationMillis);
      if (reading.method === "counter") method = "power";
    }
    state.lastTimeMillis = timeMillis;
    state.lastEnergyJoules = reading.energyJoules;
    if (reading.powerWatts !== undefined) state.lastPowerWatts = reading.powerWatts;
    if (energyJoules === undefined) return undefined;

    const powerWatts = joulesOverMillisToWatts(energyJoules, durationMillis);
    let idleWatts: number;
    let idleOrigin: string;
    const configured = this.idle.byDeviceId?.[reading.deviceId] ?? this.idle.byKind?.[reading.kind];
    if (configured !== undefined) {
      idleWatts = configured;
      idleOrigin = "config";
    } else if (reading.idleWatts !== undefined) {
      idleWatts = reading.idleWatts;
      idleOrigin = reading.source === "sim" ? "scenario" : "reported";
    } else {
      // As Kepler does: the lowest average power seen so far on this device.
      state.lowestPowerWatts = Math.min(state.lowestPowerWatts ?? powerWatts, powerWatts);
      idleWatts = state.lowestPowerWatts;
      idleOrigin = "lowest-observed";
    }
    return {
      deviceId: reading.deviceId,
      kind: reading.kind,
      source: reading.source,
      model: reading.model,
      method,
      energyJoules,
      idleJoules: Math.min(energyJoules, wattsOverMillisToJoules(idleWatts, durationMillis)),
      idleOrigin,
      durationMillis,
      powerWatts,
      processUsageMethod: reading.processUsageMethod,
    };
  }
}
