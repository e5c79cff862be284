//! Finds the `ghostline` binary: the `ghostline.serverPath` setting, else `ghostline` on
//! PATH, else the binary shipped inside the extension (`server/ghostline`). Pure: the file
//! system is reached through the `isExecutable` callback, so it is unit-tested. It does not
//! download anything.

import * as path from 'path';

export interface ServerPathEnv {
  /** `ghostline.serverPath`, already expanded (may be empty). */
  setting: string;
  /** The PATH environment variable. */
  pathEnv: string | undefined;
  /** The extension's install folder. */
  extensionPath: string;
  platform: string;
  isExecutable: (file: string) => boolean;
}

export type ServerPathSource = 'setting' | 'PATH' | 'bundled';

export interface ServerPathResult {
  path?: string;
  source?: ServerPathSource;
  /** Where it looked, in order, for the error message when nothing was found. */
  tried: string[];
}

export function resolveServerPath(env: ServerPathEnv): ServerPathResult {
  const exe = env.platform === 'win32' ? 'ghostline.exe' : 'ghostline';
  const tried: string[] = [];
  if (env.setting.trim() !== '') {
    // An explicit setting is final: pointing at a missing file is an error to report,
    // not a reason to silently start some other binary.
    const p = env.setting.trim();
    tried.push(p);
    return env.isExecutable(p) ? { path: p, source: 'setting', tried } : { tried };
  }
  const sep = env.platform === 'win32' ? ';' : ':';
  for (const dir of (env.pathEnv ?? '').split(sep)) {
    if (dir === '') continue;
    const p = path.join(dir, exe);
    tried.push(p);
    if (env.isExecutable(p)) return { path: p, source: 'PATH', tried };
  }
  const bundled = path.join(env.extensionPath, 'server', exe);
  tried.push(bundled);
  if (env.isExecutable(bundled)) return { path: bundled, source: 'bundled', tried };
  return { tried };
}
