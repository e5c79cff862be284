//! Text handling for the explanation panel: what to show while text streams, how to render
//! without the Markdown renderer, and recognising the server's `window/showMessage` echo of
//! an explanation (shown in the panel already, so not popped up again). Pure.

/** Escapes text for HTML. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** Fallback rendering when VS Code's Markdown renderer is unavailable: preformatted text. */
export function plainHtml(markdown: string): string {
  return `<pre class="plain">${escapeHtml(markdown)}</pre>`;
}

/**
 * A streamed update replaces the shown text only when it is not older: the server sends the
 * full text so far both as `$/progress` and as `ghostline/explainProgress`, so the same text
 * may arrive twice and a late duplicate must not shorten what is shown.
 */
export function nextText(shown: string, incoming: string, done: boolean): string {
  if (done) return incoming;
  if (incoming.length < shown.length && shown.startsWith(incoming)) return shown;
  return incoming;
}

function norm(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** True when an Info message is the server's echo of the explanation the panel shows. */
export function isExplanationEcho(message: string, streamed: string, result: string | undefined): boolean {
  const m = norm(message);
  if (m === '') return false;
  if (result !== undefined && norm(result) !== '' && (m === norm(result) || m.includes(norm(result)))) return true;
  const s = norm(streamed);
  if (s.length >= 24 && m.includes(s.slice(0, Math.min(80, s.length)))) return true;
  return false;
}

/** Panel title for an explanation of `fileName` at 0-based `line`. */
export function explainTitle(fileName: string, line: number): string {
  const base = fileName.split(/[\\/]/).pop() ?? fileName;
  return `Explain: ${base}:${line + 1}`;
}
