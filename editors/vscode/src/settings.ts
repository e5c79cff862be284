//! Maps the user's `ghostline.*` settings to the object the server reads from
//! `initializationOptions`, `workspace/didChangeConfiguration` and `workspace/configuration`.
//! Pure: no `vscode` import, so it is unit-tested under plain Node. It does not validate
//! values beyond their types: the server owns the meaning of every key.

/** The object the server reads (the contract in `lsp/`): every key optional. */
export interface ServerSettings {
  model?: string;
  threads?: number;
  contextSize?: number;
  maxTokens?: number;
  timeBudgetMs?: number;
  repoContext?: { enabled?: boolean; budgetTokens?: number; recentFiles?: boolean };
  window?: { prefixChars?: number; suffixChars?: number };
  prefill?: { enabled?: boolean };
  fimTemplate?: string;
  trigger?: 'automatic' | 'manual';
  backend?: Backend;
  remote?: RemoteSettings;
}

/** Which model answers: the in-process one, or a model server. */
export type Backend = 'local' | 'llama-server' | 'openai';

/**
 * Where the model server is. The API key is deliberately not here: settings are synced, so
 * the server reads it from `GHOSTLINE_API_KEY` in its environment or from `apiKeyFile`.
 */
export interface RemoteSettings {
  endpoint?: string;
  model?: string;
  apiKeyFile?: string;
  caFile?: string;
  timeoutMs?: number;
}

/** Reads one setting below `ghostline.` (e.g. `repoContext.enabled`). */
export type SettingGetter = (key: string) => unknown;

export interface PathContext {
  home: string;
  workspaceFolder?: string;
}

export const DEFAULT_LANGUAGES: readonly string[] = [
  'python', 'rust', 'c', 'cpp', 'go', 'java', 'javascript', 'javascriptreact', 'typescript',
  'typescriptreact', 'lua', 'ruby', 'shellscript', 'csharp', 'php', 'kotlin', 'swift', 'scala',
  'haskell', 'zig', 'html', 'css', 'sql', 'markdown',
];

/** Expands a leading `~` and `${workspaceFolder}`, `${userHome}` in a path setting. */
export function expandPath(p: string, ctx: PathContext): string {
  let out = p.trim();
  if (out === '') return out;
  out = out.replace(/\$\{userHome\}/g, ctx.home);
  if (ctx.workspaceFolder !== undefined) {
    out = out.replace(/\$\{workspaceFolder\}/g, ctx.workspaceFolder);
  }
  if (out === '~') return ctx.home;
  if (out.startsWith('~/') || out.startsWith('~\\')) return ctx.home + out.slice(1);
  return out;
}

function positiveInt(v: unknown): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  const n = Math.floor(v);
  return n > 0 ? n : undefined;
}

/**
 * Settings → server object. A number of 0 (the default) means "the server's default" and is
 * left out, so the server's own tuned defaults apply; `model`, `fimTemplate`, `backend` and
 * the `remote` strings are always sent, since the contract says an empty string means
 * "default" and changing them back must reach a running server.
 */
export function toServerSettings(get: SettingGetter, paths: PathContext): ServerSettings {
  const out: ServerSettings = {};
  const model = get('model');
  out.model = typeof model === 'string' ? expandPath(model, paths) : '';
  const threads = positiveInt(get('threads'));
  if (threads !== undefined) out.threads = threads;
  const contextSize = positiveInt(get('contextSize'));
  if (contextSize !== undefined) out.contextSize = contextSize;
  const maxTokens = positiveInt(get('maxTokens'));
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  const timeBudgetMs = positiveInt(get('timeBudgetMs'));
  if (timeBudgetMs !== undefined) out.timeBudgetMs = timeBudgetMs;
  const repo: { enabled?: boolean; budgetTokens?: number; recentFiles?: boolean } = {};
  const repoEnabled = get('repoContext.enabled');
  repo.enabled = typeof repoEnabled === 'boolean' ? repoEnabled : true;
  const budget = positiveInt(get('repoContext.budgetTokens'));
  if (budget !== undefined) repo.budgetTokens = budget;
  const recent = get('repoContext.recentFiles');
  repo.recentFiles = typeof recent === 'boolean' ? recent : true;
  out.repoContext = repo;
  const win: { prefixChars?: number; suffixChars?: number } = {};
  const prefixChars = positiveInt(get('window.prefixChars'));
  if (prefixChars !== undefined) win.prefixChars = prefixChars;
  const suffixChars = positiveInt(get('window.suffixChars'));
  if (suffixChars !== undefined) win.suffixChars = suffixChars;
  if (Object.keys(win).length > 0) out.window = win;
  out.prefill = { enabled: get('prefill.enabled') !== false };
  const fim = get('fimTemplate');
  out.fimTemplate = typeof fim === 'string' ? fim : '';
  out.trigger = get('trigger') === 'manual' ? 'manual' : 'automatic';
  const backend = get('backend');
  out.backend = backend === 'llama-server' || backend === 'openai' ? backend : 'local';
  // Strings always go (empty: unset), so that clearing one reaches a running server.
  const str = (k: string): string => {
    const v = get(k);
    return typeof v === 'string' ? v.trim() : '';
  };
  const remote: RemoteSettings = {
    endpoint: str('remote.endpoint'),
    model: str('remote.model'),
    apiKeyFile: expandPath(str('remote.apiKeyFile'), paths),
    caFile: expandPath(str('remote.caFile'), paths),
  };
  const timeoutMs = positiveInt(get('remote.timeoutMs'));
  if (timeoutMs !== undefined) remote.timeoutMs = timeoutMs;
  out.remote = remote;
  return out;
}

/** The payload of `workspace/didChangeConfiguration`. */
export function didChangeConfigurationParams(s: ServerSettings): { settings: { ghostline: ServerSettings } } {
  return { settings: { ghostline: s } };
}

/**
 * Answers one item of a `workspace/configuration` pull. Section `ghostline` gets the whole
 * object, `ghostline.repoContext` (or any dotted path below it) the part below; other
 * sections are not ours and get `undefined` (the caller falls back to VS Code's own answer).
 */
export function configurationItem(section: string | undefined, s: ServerSettings): { ours: boolean; value?: unknown } {
  if (section === undefined) return { ours: false };
  if (section === 'ghostline') return { ours: true, value: s };
  if (!section.startsWith('ghostline.')) return { ours: false };
  let cur: unknown = s;
  for (const part of section.slice('ghostline.'.length).split('.')) {
    if (cur === null || typeof cur !== 'object') return { ours: true, value: null };
    cur = (cur as Record<string, unknown>)[part];
  }
  return { ours: true, value: cur === undefined ? null : cur };
}

/** The languages setting, cleaned: strings only, trimmed, de-duplicated; `undefined` → defaults. */
export function enabledLanguages(v: unknown): string[] {
  if (!Array.isArray(v)) return [...DEFAULT_LANGUAGES];
  const seen = new Set<string>();
  for (const x of v) {
    if (typeof x === 'string' && x.trim() !== '') seen.add(x.trim());
  }
  return [...seen];
}

export interface DocumentFilter {
  scheme: string;
  language?: string;
}

/** Document selector for the languages: files on disk and unsaved editors; `*` = all. */
export function documentSelector(languages: readonly string[]): DocumentFilter[] {
  const schemes = ['file', 'untitled'];
  if (languages.includes('*')) return schemes.map((scheme) => ({ scheme }));
  const out: DocumentFilter[] = [];
  for (const language of languages) {
    for (const scheme of schemes) out.push({ scheme, language });
  }
  return out;
}

/** True when a change needs a server restart (the selector is fixed at start). */
export function needsRestart(changed: (key: string) => boolean): boolean {
  return changed('serverPath') || changed('enabledLanguages') || changed('trace.server');
}
