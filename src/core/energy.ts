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
 * the power reading if any, else counts the new counter from 0, and says so). Power and model
 * devices: trapezoid integration of power between readings. The first reading of a device sets
 * its baseline; with an accounting origin (the spawn) it also gives the head interval, origin →
 * first reading (see head()).
 */
export class EnergyIntegrator {
  private readonly states = new Map<string, DeviceState>();
  /** Notes about individual intervals (counter resets etc.), drained by the sampler. */
  readonly notes: string[] = [];
  /**
   * Notes about the head of the run (a counter first read after the origin): information for the
   * device's notes and --verbose, not warnings (the span is known). Drained by the sampler.
   */
  readonly headNotes: string[] = [];

  constructor(private readonly idle: IdleConfig = {}) {}

  /**
   * The head of the run: origin → a device's first reading, as an interval of its own. Power and
   * model devices: the first reading's power held back over it (a model's first reading already
   * reflects the host's CPU use since the spawn; a device's power does not jump at a spawn).
   * Counter devices: the counter's own delta when it was also read at the origin
   * (DeviceReading.originEnergyJoules). A counter read only later starts exactly at its first read
   * (extrapolating it back at the first interval's average power was seen to overcount a ramping
   * job), and that is said once in the head notes.
   */
  private head(reading: DeviceReading, state: DeviceState, timeMillis: number, originMillis: number | undefined): DeviceInterval | undefined {
    if (originMillis === undefined) return undefined;
    const headMillis = Math.max(0, timeMillis - originMillis);
    if (reading.energyJoules === undefined) {
      if (reading.powerWatts === undefined || headMillis <= 0) return undefined;
      return this.toInterval(reading, state, wattsOverMillisToJoules(reading.powerWatts, headMillis), headMillis, reading.method);
    }
    if (reading.originEnergyJoules !== undefined) {
      const headJoules = counterDeltaJoules(reading.originEnergyJoules, reading.energyJoules, reading.counterRangeJoules);
      if (headJoules === undefined) {
        this.headNotes.push(`${reading.deviceId}: energy counter went back between the spawn and its first read; counted from the first read`);
        return undefined;
      }
      return headMillis > 0 ? this.toInterval(reading, state, headJoules, headMillis, "counter") : undefined;
    }
    if (headMillis > 0) this.headNotes.push(`${reading.deviceId}: energy counter first read ${Math.round(headMillis)} ms after the spawn; the energy before it is not counted`);
    return undefined;
  }

  /**
   * Returns the interval since the previous reading of this device. A device's first reading has
   * none, unless `originMillis` says when accounting started (the spawn, before the devices were
   * probed): then it returns the head interval, origin → this reading (head()), so the run's first
   * interval carries the devices' power instead of nothing.
   */
  interval(reading: DeviceReading, timeMillis: number, originMillis?: number): DeviceInterval | undefined {
    const state = this.states.get(reading.deviceId);
    if (reading.status === "lost") {
      // A lost device contributes nothing further; keep its state so a recovery re-baselines.
      this.states.delete(reading.deviceId);
      return undefined;
    }
    if (!state) {
      const first: DeviceState = { lastTimeMillis: timeMillis, lastEnergyJoules: reading.energyJoules, lastPowerWatts: reading.powerWatts };
      this.states.set(reading.deviceId, first);
      return this.head(reading, first, timeMillis, originMillis);
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
          // The counter restarted from 0 (driver reload, GPU reset): what it shows now was spent
          // since the reset; what was spent between the previous reading and the reset is unknown
          // (a lower bound, said). The next interval counts on from the new counter.
          energyJoules = reading.energyJoules;
          this.notes.push(`${reading.deviceId}: energy counter reset (driver reload?); counted from the new counter's 0, the energy before the reset in that interval is unknown`);
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
    return this.toInterval(reading, state, energyJoules, durationMillis, method);
  }

  /** The interval of `energyJoules` over `durationMillis`, with the device's idle part and its origin. */
  private toInterval(reading: DeviceReading, state: DeviceState, energyJoules: number, durationMillis: number, method: DeviceInterval["method"]): DeviceInterval {
    const powerWatts = joulesOverMillisToWatts(energyJoules, durationMillis);
    let idleWatts: number;
    let idleOrigin: string;
    // Own keys only: a device id such as `constructor` must not find Object.prototype's.
    const byId = this.idle.byDeviceId;
    const byKind = this.idle.byKind;
    const configured =
      (byId && Object.hasOwn(byId, reading.deviceId) ? byId[reading.deviceId] : undefined) ??
      (byKind && Object.hasOwn(byKind, reading.kind) ? byKind[reading.kind] : undefined);
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
