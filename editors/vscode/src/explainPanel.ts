//! The side panel that shows an explanation as it streams: one webview, reused, beside the
//! editor. Markdown is rendered by VS Code's own renderer (`markdown.api.render`, from the
//! built-in Markdown extension) and falls back to preformatted text. It does not talk to the
//! server; extension.ts feeds it text.

import * as vscode from 'vscode';
import { escapeHtml, nextText, plainHtml } from './explainText';

type PanelState = 'streaming' | 'done' | 'error';

export class ExplainPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private shown = '';
  private state: PanelState = 'done';
  private pending: ReturnType<typeof setTimeout> | undefined;
  private renderSeq = 0;
  /** Identifies the explanation the panel currently shows; updates for others are ignored. */
  private current: string | number | undefined;

  get activeToken(): string | number | undefined {
    return this.current;
  }

  get text(): string {
    return this.shown;
  }

  get streaming(): boolean {
    return this.state === 'streaming';
  }

  start(token: string | number, title: string): void {
    this.current = token;
    this.shown = '';
    this.state = 'streaming';
    if (!this.panel) {
      this.panel = vscode.window.createWebviewPanel(
        'ghostline.explain',
        title,
        { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
        { enableScripts: true, retainContextWhenHidden: true, enableFindWidget: true },
      );
      this.panel.onDidDispose(() => {
        this.panel = undefined;
      });
      this.panel.webview.html = this.page();
    } else {
      this.panel.title = title;
      this.panel.reveal(vscode.ViewColumn.Beside, true);
    }
    this.schedule(0);
  }

  /** Text so far (the full text, not a delta). */
  update(token: string | number | undefined, text: string): void {
    if (token !== undefined && token !== this.current) return;
    if (this.state !== 'streaming') return;
    this.shown = nextText(this.shown, text, false);
    this.schedule(80);
  }

  finish(token: string | number, text: string): void {
    if (token !== this.current) return;
    this.shown = nextText(this.shown, text, true);
    this.state = 'done';
    this.schedule(0);
  }

  fail(token: string | number, message: string): void {
    if (token !== this.current) return;
    this.state = 'error';
    this.shown = this.shown === '' ? message : `${this.shown}\n\n---\n\n**Error:** ${message}`;
    this.schedule(0);
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    this.panel?.dispose();
  }

  private schedule(ms: number): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.render();
    }, ms);
  }

  private async render(): Promise<void> {
    const panel = this.panel;
    if (!panel) return;
    const seq = ++this.renderSeq;
    const text = this.shown;
    let html: string;
    try {
      const r = await vscode.commands.executeCommand<string>('markdown.api.render', text);
      html = typeof r === 'string' ? r : plainHtml(text);
    } catch {
      html = plainHtml(text);
    }
    if (seq !== this.renderSeq || !this.panel) return;
    const status =
      this.state === 'streaming'
        ? (text === '' ? 'Asking the model…' : 'Generating…')
        : this.state === 'error'
          ? 'Failed.'
          : '';
    void panel.webview.postMessage({ type: 'update', html, status, state: this.state });
  }

  private page(): string {
    const nonce = Math.random().toString(36).slice(2) + Date.now().toString(36);
    const csp = [
      "default-src 'none'",
      `style-src 'unsafe-inline' ${this.panel?.webview.cspSource ?? ''}`,
      `img-src ${this.panel?.webview.cspSource ?? ''} https: data:`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style>
  body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); line-height: 1.5; padding: 0 16px 24px; }
  pre, code { font-family: var(--vscode-editor-font-family); }
  pre { background: var(--vscode-textCodeBlock-background); padding: 8px; overflow-x: auto; white-space: pre-wrap; }
  #status { color: var(--vscode-descriptionForeground); font-style: italic; margin: 8px 0; min-height: 1.2em; }
  .error #status { color: var(--vscode-errorForeground); }
</style></head>
<body><div id="status">Asking the model…</div><div id="content" class="ghostline-explanation"></div>
<script nonce="${nonce}">
  const content = document.getElementById('content');
  const status = document.getElementById('status');
  window.addEventListener('message', (e) => {
    const m = e.data;
    if (!m || m.type !== 'update') return;
    content.innerHTML = m.html;
    status.textContent = m.status;
    document.body.className = m.state;
  });
</script></body></html>`;
  }
}
