//! Decides whether and when to restart a crashed server: exponential backoff with a cap,
//! and a give-up rule (too many crashes within a window). Pure: time is passed in.

export interface BackoffConfig {
  /** Delay before the first restart. */
  baseMs: number;
  /** Upper bound for one delay. */
  maxMs: number;
  /** Crashes tolerated within `windowMs`; one more and we stop restarting. */
  maxCrashes: number;
  windowMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = {
  baseMs: 1000,
  maxMs: 30000,
  maxCrashes: 5,
  windowMs: 3 * 60 * 1000,
};

/** Delay before restart number `attempt` (1-based): base, 2×base, 4×base … capped. */
export function backoffDelay(attempt: number, cfg: BackoffConfig = DEFAULT_BACKOFF): number {
  const n = Math.max(1, Math.floor(attempt));
  const d = cfg.baseMs * Math.pow(2, n - 1);
  return Math.min(cfg.maxMs, d);
}

export interface CrashDecision {
  restart: boolean;
  /** 1-based count of crashes inside the window, this one included. */
  attempt: number;
  delayMs: number;
  message: string;
}

export class CrashTracker {
  private crashes: number[] = [];

  constructor(private readonly cfg: BackoffConfig = DEFAULT_BACKOFF) {}

  /** Records a crash at `now` (ms) and decides. */
  record(now: number): CrashDecision {
    this.crashes = this.crashes.filter((t) => now - t < this.cfg.windowMs);
    this.crashes.push(now);
    const attempt = this.crashes.length;
    if (attempt > this.cfg.maxCrashes) {
      const mins = Math.round(this.cfg.windowMs / 60000);
      return {
        restart: false,
        attempt,
        delayMs: 0,
        message: `The ghostline server crashed ${attempt} times in the last ${mins} minutes and will not be restarted. See the "ghostline" output for its log, then run "ghostline: Restart Server".`,
      };
    }
    const delayMs = backoffDelay(attempt, this.cfg);
    return {
      restart: true,
      attempt,
      delayMs,
      message: `The ghostline server stopped unexpectedly; restarting in ${formatSeconds(delayMs)} (attempt ${attempt} of ${this.cfg.maxCrashes}).`,
    };
  }

  /** Forget past crashes (after a manual restart, or once the server has run well). */
  reset(): void {
    this.crashes = [];
  }
}

export function formatSeconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(1)} s`;
}
