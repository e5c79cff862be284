//! The ghostline VS Code extension: starts the `ghostline` language server with
//! vscode-languageclient, shows its suggestions as VS Code inline suggestions (ghost text),
//! keeps a status bar item in step with the server, restarts a crashed server with backoff,
//! and shows "Explain This Function" in a side panel while it streams.
//!
//! It holds no prompt logic: every suggestion and explanation comes from the server. Pure
//! pieces (settings mapping, status text, backoff, result normalisation) live in their own
//! modules and are unit-tested without VS Code.

import * as fs from 'fs';
import * as os from 'os';
import * as vscode from 'vscode';
import {
  CloseAction,
  ErrorAction,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  MessageType,
  ServerOptions,
  ShowMessageNotification,
  ShowMessageParams,
  State,
  WorkDoneProgress,
  DidChangeConfigurationNotification,
} from 'vscode-languageclient/node';
import { CrashTracker } from './backoff';
import { ExplainPanel } from './explainPanel';
import { explainTitle, isExplanationEcho } from './explainText';
import { EXPLAIN_COMMAND, explainArguments, LspRange, normalizeInlineResult, toLspTriggerKind } from './protocol';
import { resolveServerPath } from './serverPath';
import {
  configurationItem,
  didChangeConfigurationParams,
  documentSelector,
  enabledLanguages,
  expandPath,
  needsRestart,
  ServerSettings,
  toServerSettings,
} from './settings';
import { parseStatus, StatusModel, statusView } from './status';

const SECTION = 'ghostline';

let ext: Ghostline | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<Ghostline> {
  ext = new Ghostline(context);
  context.subscriptions.push(ext);
  await ext.start();
  return ext;
}

export async function deactivate(): Promise<void> {
  await ext?.stop();
}

function config(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function pathContext() {
  return { home: os.homedir(), workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath };
}

function isExecutable(file: string): boolean {
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) return false;
    if (process.platform === 'win32') return true;
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function toLspRange(r: vscode.Range): LspRange {
  return {
    start: { line: r.start.line, character: r.start.character },
    end: { line: r.end.line, character: r.end.character },
  };
}

export class Ghostline implements vscode.Disposable {
  readonly output: vscode.OutputChannel;
  private readonly trace: vscode.OutputChannel;
  private readonly statusItem: vscode.StatusBarItem;
  private readonly panel = new ExplainPanel();
  private readonly crashes = new CrashTracker();
  private readonly disposables: vscode.Disposable[] = [];
  private client: LanguageClient | undefined;
  private providerRegistration: vscode.Disposable | undefined;
  private status: StatusModel = { state: 'stopped' };
  private stopping = false;
  private explainSeq = 0;
  private lastExplanation: string | undefined;
  /** Number of inline requests in flight (for the "generating" spinner). */
  private inflight = 0;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.output = vscode.window.createOutputChannel('ghostline');
    this.trace = vscode.window.createOutputChannel('ghostline LSP trace');
    this.statusItem = vscode.window.createStatusBarItem('ghostline.status', vscode.StatusBarAlignment.Right, 100);
    this.statusItem.name = 'ghostline';
    this.statusItem.command = 'ghostline.statusMenu';
    this.disposables.push(this.output, this.trace, this.statusItem, this.panel);
    this.renderStatus();
    this.statusItem.show();

    this.disposables.push(
      vscode.commands.registerCommand('ghostline.toggle', () => this.toggle()),
      vscode.commands.registerCommand('ghostline.explain', () => this.explainAtCursor()),
      vscode.commands.registerCommand('ghostline.trigger', () => vscode.commands.executeCommand('editor.action.inlineSuggest.trigger')),
      vscode.commands.registerCommand('ghostline.restart', () => this.restart(true)),
      vscode.commands.registerCommand('ghostline.showLog', () => this.output.show(true)),
      vscode.commands.registerCommand('ghostline.statusMenu', () => this.statusMenu()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigChanged(e)),
    );
    this.registerProvider();
  }

  /** For tests and for other extensions: the state the status bar shows. */
  get state(): StatusModel {
    return { ...this.status };
  }

  private enabled(): boolean {
    return config().get<boolean>('enable', true);
  }

  private serverSettings(): ServerSettings {
    const c = config();
    return toServerSettings((k) => c.get(k), pathContext());
  }

  private languages(): string[] {
    return enabledLanguages(config().get('enabledLanguages'));
  }

  private setStatus(m: StatusModel): void {
    const was = this.status.state;
    this.status = m;
    this.renderStatus();
    // Typing done while the model was loading got empty answers: ask again once it is ready.
    if (m.state === 'ready' && (was === 'loading' || was === 'starting') && this.enabled() && config().get('trigger') !== 'manual') {
      const ed = vscode.window.activeTextEditor;
      if (ed && vscode.languages.match(documentSelector(this.languages()) as vscode.DocumentFilter[], ed.document) > 0) {
        void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
      }
    }
  }

  private renderStatus(): void {
    const v = statusView(this.inflight > 0 && this.status.state === 'ready' ? { ...this.status, state: 'generating' } : this.status, this.enabled());
    this.statusItem.text = v.text;
    this.statusItem.tooltip = v.tooltip;
    this.statusItem.backgroundColor =
      v.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : v.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.statusItem.accessibilityInformation = { label: v.tooltip.split('\n')[0] };
  }

  // ---------------------------------------------------------------- server lifecycle

  async start(): Promise<void> {
    if (this.client) return;
    const c = config();
    const found = resolveServerPath({
      setting: expandPath(c.get<string>('serverPath', ''), pathContext()),
      pathEnv: process.env.PATH,
      extensionPath: this.context.extensionPath,
      platform: process.platform,
      isExecutable,
    });
    if (!found.path) {
      const msg = `ghostline: the server binary was not found (looked at: ${found.tried.slice(0, 6).join(', ')}${found.tried.length > 6 ? ', …' : ''}). Build it (cargo build --release) and set "ghostline.serverPath", or put \`ghostline\` on PATH.`;
      this.output.appendLine(msg);
      this.setStatus({ state: 'error', message: 'Server binary not found.' });
      void vscode.window.showErrorMessage(msg, 'Open Settings', 'Show Log').then((pick) => {
        if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'ghostline.serverPath');
        if (pick === 'Show Log') this.output.show(true);
      });
      return;
    }
    this.output.appendLine(`[ghostline] starting ${found.path} (from ${found.source})`);

    const serverOptions: ServerOptions = {
      command: found.path,
      args: [],
      options: { env: { ...process.env } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: documentSelector(this.languages()),
      outputChannel: this.output,
      traceOutputChannel: this.trace,
      initializationOptions: () => this.serverSettings(),
      progressOnInitialization: false,
      errorHandler: {
        error: (_error, _message, count) => ({ action: (count ?? 0) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true }),
        closed: async () => {
          const d = this.crashes.record(Date.now());
          this.output.appendLine(`[ghostline] ${d.message}`);
          if (!d.restart) {
            this.setStatus({ state: 'error', message: 'The server keeps crashing; not restarted.' });
            void vscode.window.showErrorMessage(d.message, 'Show Log', 'Restart').then((pick) => {
              if (pick === 'Show Log') this.output.show(true);
              if (pick === 'Restart') void this.restart(true);
            });
            return { action: CloseAction.DoNotRestart, handled: true };
          }
          this.setStatus({ state: 'error', message: d.message });
          void vscode.window.showWarningMessage(d.message, 'Show Log').then((pick) => {
            if (pick === 'Show Log') this.output.show(true);
          });
          await new Promise((r) => setTimeout(r, d.delayMs));
          if (this.stopping) return { action: CloseAction.DoNotRestart, handled: true };
          this.setStatus({ state: 'starting' });
          return { action: CloseAction.Restart, handled: true };
        },
      },
      middleware: {
        executeCommand: async (command, args, next) => {
          // The server's code action runs this command; show it in the panel.
          if (command === EXPLAIN_COMMAND) return this.runExplain(args);
          return next(command, args);
        },
        workspace: {
          configuration: async (params, token, next) => {
            const settings = this.serverSettings();
            const mine = params.items.map((it) => configurationItem(it.section, settings));
            if (mine.every((m) => m.ours)) return mine.map((m) => m.value);
            const theirs = await next(params, token);
            if (!Array.isArray(theirs)) return theirs;
            return mine.map((m, i) => (m.ours ? m.value : theirs[i]));
          },
        },
      },
    };

    const client = new LanguageClient('ghostline', 'ghostline', serverOptions, clientOptions);
    this.client = client;
    client.onNotification('ghostline/status', (p: unknown) => {
      const m = parseStatus(p);
      if (m) this.setStatus(m);
    });
    client.onNotification('ghostline/explainProgress', (p: { token?: string | number; uri?: string; text?: string; done?: boolean }) => {
      if (!p || typeof p.text !== 'string') return;
      // Explanations started by another client path (no token of ours) still stream here.
      const token = p.token ?? this.panel.activeToken;
      this.panel.update(token, p.text);
    });
    client.onNotification(ShowMessageNotification.type, (p: ShowMessageParams) => this.onShowMessage(p));
    this.disposables.push(
      client.onDidChangeState((e) => {
        if (e.newState === State.Starting) this.setStatus({ state: 'starting' });
        else if (e.newState === State.Running) {
          void vscode.commands.executeCommand('setContext', 'ghostline.active', true);
          if (this.status.state === 'starting' || this.status.state === 'stopped') this.setStatus({ state: 'loading' });
        } else if (e.newState === State.Stopped) {
          void vscode.commands.executeCommand('setContext', 'ghostline.active', false);
          if (this.status.state !== 'error') this.setStatus({ state: 'stopped' });
        }
      }),
    );
    this.setStatus({ state: 'starting' });
    try {
      await client.start();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.output.appendLine(`[ghostline] the server failed to start: ${msg}`);
      this.setStatus({ state: 'error', message: `The server failed to start: ${msg}` });
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    this.stopping = true;
    try {
      if (client.isRunning()) await client.stop(5000);
      else await client.dispose(2000).catch(() => undefined);
    } catch (e) {
      this.output.appendLine(`[ghostline] stopping the server: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.stopping = false;
    }
  }

  async restart(manual: boolean): Promise<void> {
    if (manual) this.crashes.reset();
    this.output.appendLine('[ghostline] restarting the server');
    await this.stop();
    this.setStatus({ state: 'stopped' });
    await this.start();
  }

  private onConfigChanged(e: vscode.ConfigurationChangeEvent): void {
    if (!e.affectsConfiguration(SECTION)) return;
    if (e.affectsConfiguration(`${SECTION}.enabledLanguages`)) this.registerProvider();
    if (needsRestart((k) => e.affectsConfiguration(`${SECTION}.${k}`))) {
      void this.restart(true);
      return;
    }
    this.renderStatus();
    const client = this.client;
    if (client?.isRunning()) {
      void client
        .sendNotification(DidChangeConfigurationNotification.type, didChangeConfigurationParams(this.serverSettings()))
        .catch((err) => this.output.appendLine(`[ghostline] didChangeConfiguration: ${String(err)}`));
    }
  }

  private onShowMessage(p: ShowMessageParams): void {
    if (p.type === MessageType.Info || p.type === MessageType.Log) {
      if (isExplanationEcho(p.message, this.panel.text, this.lastExplanation)) {
        this.output.appendLine('[ghostline] explanation also sent as a message (shown in the panel)');
        return;
      }
    }
    const show =
      p.type === MessageType.Error
        ? vscode.window.showErrorMessage
        : p.type === MessageType.Warning
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    this.output.appendLine(`[server message] ${p.message}`);
    void show(`ghostline: ${p.message}`, 'Show Log').then((pick) => {
      if (pick === 'Show Log') this.output.show(true);
    });
    if (p.type === MessageType.Error) this.setStatus({ state: 'error', message: p.message });
  }

  // ---------------------------------------------------------------- suggestions

  private registerProvider(): void {
    this.providerRegistration?.dispose();
    const selector = documentSelector(this.languages()) as vscode.DocumentFilter[];
    this.providerRegistration = vscode.languages.registerInlineCompletionItemProvider(selector, {
      provideInlineCompletionItems: (doc, pos, ctx, token) => this.provideInline(doc, pos, ctx, token),
    });
    this.disposables.push(this.providerRegistration);
  }

  private async provideInline(
    doc: vscode.TextDocument,
    pos: vscode.Position,
    ctx: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const client = this.client;
    if (!client || !client.isRunning() || !this.enabled()) return undefined;
    if (config().get('trigger') === 'manual' && ctx.triggerKind !== vscode.InlineCompletionTriggerKind.Invoke) return undefined;
    const params = {
      textDocument: { uri: client.code2ProtocolConverter.asUri(doc.uri) },
      position: { line: pos.line, character: pos.character },
      context: {
        triggerKind: toLspTriggerKind(ctx.triggerKind),
        ...(ctx.selectedCompletionInfo
          ? { selectedCompletionInfo: { range: toLspRange(ctx.selectedCompletionInfo.range), text: ctx.selectedCompletionInfo.text } }
          : {}),
      },
    };
    this.inflight++;
    this.renderStatus();
    let result: unknown;
    try {
      result = await client.sendRequest('textDocument/inlineCompletion', params, token);
    } catch (e) {
      if (!token.isCancellationRequested) this.output.appendLine(`[ghostline] inlineCompletion failed: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    } finally {
      this.inflight--;
      this.renderStatus();
    }
    if (token.isCancellationRequested) return undefined;
    return normalizeInlineResult(result).map((it) => {
      const text = it.snippet ? new vscode.SnippetString(it.text) : it.text;
      const range = it.range
        ? new vscode.Range(it.range.start.line, it.range.start.character, it.range.end.line, it.range.end.character)
        : undefined;
      const item = new vscode.InlineCompletionItem(text, range);
      if (it.filterText !== undefined) item.filterText = it.filterText;
      return item;
    });
  }

  private async toggle(): Promise<void> {
    const now = !this.enabled();
    await config().update('enable', now, vscode.ConfigurationTarget.Global);
    this.renderStatus();
    void vscode.window.setStatusBarMessage(`ghostline: suggestions ${now ? 'enabled' : 'disabled'}`, 3000);
  }

  private async statusMenu(): Promise<void> {
    if (statusView(this.status, this.enabled()).click === 'showLog') {
      this.output.show(true);
      return;
    }
    const items: (vscode.QuickPickItem & { run: () => unknown })[] = [
      { label: this.enabled() ? '$(circle-slash) Disable Suggestions' : '$(sparkle) Enable Suggestions', run: () => this.toggle() },
      { label: '$(comment-discussion) Explain This Function', run: () => this.explainAtCursor() },
      { label: '$(output) Show Server Log', run: () => this.output.show(true) },
      { label: '$(debug-restart) Restart Server', run: () => this.restart(true) },
      { label: '$(gear) Open Settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', '@ext:ghostline.ghostline') },
    ];
    const pick = await vscode.window.showQuickPick(items, { title: `ghostline — ${statusView(this.status, this.enabled()).tooltip.split('\n')[0]}` });
    await pick?.run();
  }

  // ---------------------------------------------------------------- explain

  private async explainAtCursor(): Promise<unknown> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('ghostline: open a file and put the cursor inside a function to explain it.');
      return undefined;
    }
    const uri = this.client ? this.client.code2ProtocolConverter.asUri(editor.document.uri) : editor.document.uri.toString();
    return this.runExplain(explainArguments(uri, toLspRange(editor.selection)));
  }

  /** Runs `ghostline.explainFunction` with a progress token and streams into the panel. */
  private async runExplain(args: unknown[] | undefined): Promise<unknown> {
    const client = this.client;
    if (!client || !client.isRunning()) {
      void vscode.window.showWarningMessage('ghostline: the server is not running.', 'Show Log').then((p) => p && this.output.show(true));
      return undefined;
    }
    const first = (args?.[0] ?? {}) as { uri?: string; position?: { line: number }; range?: { start: { line: number } } };
    const line = first.position?.line ?? first.range?.start.line ?? 0;
    let fileName = first.uri ?? 'file';
    try {
      fileName = vscode.Uri.parse(fileName).fsPath;
    } catch {
      /* keep the raw uri */
    }
    const token = `ghostline-explain-${Date.now()}-${++this.explainSeq}`;
    this.lastExplanation = undefined;
    this.panel.start(token, explainTitle(fileName, line));
    const progress = client.onProgress(WorkDoneProgress.type, token, (v) => {
      if ((v.kind === 'report' || v.kind === 'begin') && typeof v.message === 'string' && v.message !== '') {
        this.panel.update(token, v.message);
      }
    });
    try {
      const result = await client.sendRequest(ExecuteCommandRequest.type, {
        command: EXPLAIN_COMMAND,
        arguments: args ?? [],
        workDoneToken: token,
      });
      const text = typeof result === 'string' ? result : result == null ? this.panel.text : '```json\n' + JSON.stringify(result, null, 2) + '\n```';
      this.lastExplanation = text;
      this.panel.finish(token, text === '' ? '_The server returned no explanation._' : text);
      return result;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.output.appendLine(`[ghostline] explain failed: ${msg}`);
      this.panel.fail(token, msg);
      return undefined;
    } finally {
      progress.dispose();
    }
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) {
      try {
        d.dispose();
      } catch {
        /* already gone */
      }
    }
  }
}
