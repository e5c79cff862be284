//! Plain-data helpers for the LSP messages the extension builds itself:
//! `textDocument/inlineCompletion` (trigger kinds, result normalisation) and the arguments
//! of `ghostline.explainFunction`. Pure; converting to `vscode` types happens in extension.ts.
//!
//! Why not vscode-languageclient's own inline completion feature: in 9.0.1 it passes VS
//! Code's `InlineCompletionTriggerKind` (Invoke = 0, Automatic = 1) through unchanged, while
//! LSP 3.18 numbers them Invoked = 1, Automatic = 2, so every automatic request would reach
//! the server as "Invoked". A thin provider that maps the kind is all that is needed.

export interface LspPosition {
  line: number;
  character: number;
}
export interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** LSP 3.18 `InlineCompletionTriggerKind`. */
export const LSP_INVOKED = 1;
export const LSP_AUTOMATIC = 2;

/** VS Code's `InlineCompletionTriggerKind` (Invoke = 0, Automatic = 1) → LSP's. */
export function toLspTriggerKind(vscodeKind: number): number {
  return vscodeKind === 0 ? LSP_INVOKED : LSP_AUTOMATIC;
}

export interface NormalItem {
  text: string;
  range?: LspRange;
  /** `true` when the server sent a snippet (`StringValue` of kind `snippet`). */
  snippet: boolean;
  filterText?: string;
}

function isPosition(p: unknown): p is LspPosition {
  if (p === null || typeof p !== 'object') return false;
  const o = p as Record<string, unknown>;
  return typeof o.line === 'number' && typeof o.character === 'number' && o.line >= 0 && o.character >= 0;
}

function isRange(r: unknown): r is LspRange {
  if (r === null || typeof r !== 'object') return false;
  const o = r as Record<string, unknown>;
  return isPosition(o.start) && isPosition(o.end);
}

/**
 * `InlineCompletionList | InlineCompletionItem[] | null` → items with text. Drops items
 * whose text is empty and ignores malformed ranges (the item then inserts at the cursor).
 */
export function normalizeInlineResult(result: unknown): NormalItem[] {
  let items: unknown[];
  if (result === null || result === undefined) return [];
  if (Array.isArray(result)) items = result;
  else if (typeof result === 'object' && Array.isArray((result as { items?: unknown }).items)) {
    items = (result as { items: unknown[] }).items;
  } else return [];
  const out: NormalItem[] = [];
  for (const it of items) {
    if (it === null || typeof it !== 'object') continue;
    const o = it as Record<string, unknown>;
    let text: string | undefined;
    let snippet = false;
    if (typeof o.insertText === 'string') text = o.insertText;
    else if (o.insertText && typeof o.insertText === 'object') {
      const sv = o.insertText as Record<string, unknown>;
      if (typeof sv.value === 'string') {
        text = sv.value;
        snippet = sv.kind === 'snippet';
      }
    }
    if (text === undefined || text === '') continue;
    const item: NormalItem = { text, snippet };
    if (isRange(o.range)) item.range = o.range;
    if (typeof o.filterText === 'string') item.filterText = o.filterText;
    out.push(item);
  }
  return out;
}

/** Arguments of `ghostline.explainFunction`: a range when text is selected, else the cursor. */
export function explainArguments(uri: string, selection: LspRange): [{ uri: string; position?: LspPosition; range?: LspRange }] {
  const empty = selection.start.line === selection.end.line && selection.start.character === selection.end.character;
  return empty ? [{ uri, position: selection.end }] : [{ uri, range: selection }];
}

export const EXPLAIN_COMMAND = 'ghostline.explainFunction';
