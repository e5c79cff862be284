//! What the status bar item shows for a server state: text (with codicons), tooltip, colour
//! and what a click does. Pure; the extension feeds it the `ghostline/status` notifications
//! and its own view of the connection.

export type ServerState = 'starting' | 'loading' | 'ready' | 'generating' | 'idle' | 'error' | 'disabled' | 'stopped';

/** Params of the server's `ghostline/status` notification. */
export interface StatusParams {
  state: string;
  message?: string;
  percentage?: number;
}

export interface StatusModel {
  state: ServerState;
  message?: string;
  percentage?: number;
}

export type ClickAction = 'showLog' | 'menu';

export interface StatusView {
  text: string;
  tooltip: string;
  /** `error` → the error background colour, `warning` → the warning one. */
  severity: 'normal' | 'warning' | 'error';
  click: ClickAction;
}

const KNOWN: readonly ServerState[] = ['starting', 'loading', 'ready', 'generating', 'idle', 'error', 'disabled', 'stopped'];

/** Validates a `ghostline/status` notification; unknown states are ignored (`undefined`). */
export function parseStatus(p: unknown): StatusModel | undefined {
  if (p === null || typeof p !== 'object') return undefined;
  const o = p as Record<string, unknown>;
  if (typeof o.state !== 'string' || !KNOWN.includes(o.state as ServerState)) return undefined;
  const out: StatusModel = { state: o.state as ServerState };
  if (typeof o.message === 'string' && o.message !== '') out.message = o.message;
  if (typeof o.percentage === 'number' && Number.isFinite(o.percentage)) {
    out.percentage = Math.max(0, Math.min(100, Math.round(o.percentage)));
  }
  return out;
}

/**
 * The view. `enabled` is the user's toggle (`ghostline.enable`): when off, the item says
 * "disabled" whatever the server does, except errors, which stay visible.
 */
export function statusView(m: StatusModel, enabled: boolean): StatusView {
  const detail = m.message ? `\n\n${m.message}` : '';
  if (m.state === 'error') {
    return {
      text: '$(error) ghostline',
      tooltip: `ghostline: error${detail}\n\nClick to show the server log.`,
      severity: 'error',
      click: 'showLog',
    };
  }
  if (m.state === 'stopped') {
    return {
      text: '$(debug-disconnect) ghostline',
      tooltip: `ghostline: server not running${detail}\n\nClick to show the server log.`,
      severity: 'warning',
      click: 'showLog',
    };
  }
  if (!enabled || m.state === 'disabled') {
    return {
      text: '$(circle-slash) ghostline',
      tooltip: `ghostline: suggestions disabled${detail}\n\nClick for options (enable, log, restart).`,
      severity: 'normal',
      click: 'menu',
    };
  }
  switch (m.state) {
    case 'starting':
      return { text: '$(loading~spin) ghostline', tooltip: 'ghostline: starting the server…', severity: 'normal', click: 'menu' };
    case 'loading': {
      const pct = m.percentage !== undefined ? ` ${m.percentage}%` : '';
      return {
        text: `$(loading~spin) ghostline${pct}`,
        tooltip: `ghostline: loading the model${pct}${detail}`,
        severity: 'normal',
        click: 'menu',
      };
    }
    case 'generating':
      return { text: '$(sync~spin) ghostline', tooltip: `ghostline: generating…${detail}`, severity: 'normal', click: 'menu' };
    case 'ready':
    case 'idle':
    default:
      return {
        text: '$(sparkle) ghostline',
        tooltip: `ghostline: ready${detail}\n\nClick for options (disable, log, restart).`,
        severity: 'normal',
        click: 'menu',
      };
  }
}
