--- ghostline.config: the plugin's options, their defaults, and the mapping of the
--- `settings` part to the object the server reads (`initializationOptions`,
--- `workspace/didChangeConfiguration`, `workspace/configuration`). No Neovim state here
--- beyond reading the environment; it does not validate what only the server can judge.
local M = {}

M.defaults = {
  --- Command that starts the server. nil: `ghostline` on PATH, else $GHOSTLINE_BIN.
  cmd = nil,
  --- Filetypes that get suggestions (and the server attached).
  filetypes = {
    'python', 'rust', 'c', 'cpp', 'go', 'java', 'javascript', 'javascriptreact', 'typescript',
    'typescriptreact', 'lua', 'ruby', 'sh', 'bash', 'zsh', 'cs', 'php', 'kotlin', 'swift',
    'scala', 'haskell', 'zig', 'html', 'css', 'sql', 'markdown',
  },
  --- Files whose folder is the workspace root (searched upwards); else the cwd.
  root_markers = { '.git', 'pyproject.toml', 'setup.py', 'Cargo.toml', 'package.json', 'go.mod', 'Makefile' },
  --- Suggestions on at start (`:GhostlineToggle` flips it).
  enabled = true,
  --- Milliseconds to wait after the last keystroke before asking the server.
  debounce_ms = 75,
  --- "auto": Neovim's own `vim.lsp.inline_completion` where it exists (0.12+), else the
  --- plugin's extmarks. true: require native. false: always the plugin's extmarks.
  native = 'auto',
  --- Insert-mode keys. false disables one. Defaults leave <Tab> alone (completion plugins
  --- own it); set `tab = true` to also accept with <Tab> when a suggestion is shown
  --- (otherwise <Tab> does what it did before).
  keymaps = {
    accept = '<M-l>',
    accept_word = '<M-w>',
    accept_line = '<M-j>',
    next = '<M-]>',
    prev = '<M-[>',
    dismiss = '<C-]>',
    suggest = '<M-\\>',
    tab = false,
  },
  --- Highlight group of the ghost text (linked to Comment unless you define it).
  hl_group = 'GhostlineSuggestion',
  --- Explanation window: border and size relative to the editor.
  explain = { border = 'rounded', max_width = 0.6, max_height = 0.7 },
  --- Sent to the server. 0 / nil: the server's default.
  settings = {
    model = '',             -- path to a GGUF; '' = server default ($GHOSTLINE_MODEL or ~/.cache/ghostline/models/…1.5b…)
    threads = 0,
    contextSize = 0,
    maxTokens = 0,
    timeBudgetMs = 0,
    --- recentFiles: also the definitions around recent edits in other open files.
    repoContext = { enabled = true, budgetTokens = 0, recentFiles = true },
    --- Characters before / after the cursor sent at most (smaller: faster first suggestion
    --- after opening or jumping). 0: the server's default (3000 / 1000).
    window = { prefixChars = 0, suffixChars = 0 },
    --- While the model is idle, evaluate the file around the cursor ahead of time (a jump
    --- nearby gets its first suggestion in seconds; idle CPU and up to ~300 MB of memory).
    prefill = { enabled = true },
    fimTemplate = '',       -- FIM template or preset; '' = the model's own (openai: from remote.model)
    trigger = 'automatic',  -- or 'manual': only <M-\> / :GhostlineSuggest ask
    backend = 'local',      -- or 'llama-server' / 'openai': a model server at remote.endpoint
    --- The model server (backend 'llama-server' or 'openai'). The API key is never a
    --- setting: the server reads $GHOSTLINE_API_KEY from its environment, or apiKeyFile.
    remote = { endpoint = '', model = '', apiKeyFile = '', caFile = '', timeoutMs = 0 },
  },
  --- Extra fields for the LSP client config (e.g. `on_attach`, `capabilities`).
  lsp = {},
}

local function is_list(t)
  if type(t) ~= 'table' then return false end
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  for i = 1, n do
    if t[i] == nil then return false end
  end
  return true
end

--- Deep merge: tables merge key by key; lists (and scalars) from `b` replace those of `a`.
function M.merge(a, b)
  if b == nil then return a end
  if type(a) ~= 'table' or type(b) ~= 'table' then return b end
  if (is_list(b) and next(b) ~= nil) or (is_list(a) and next(a) ~= nil) then return b end
  local out = {}
  for k, v in pairs(a) do out[k] = v end
  for k, v in pairs(b) do out[k] = M.merge(a[k], v) end
  return out
end

function M.resolve(opts)
  return M.merge(M.defaults, opts or {})
end

local function positive_int(v)
  if type(v) ~= 'number' or v ~= v or v == math.huge then return nil end
  v = math.floor(v)
  if v > 0 then return v end
  return nil
end

--- Expands `~` and environment variables in a path.
function M.expand_path(p, home)
  if type(p) ~= 'string' then return '' end
  p = p:gsub('^%s+', ''):gsub('%s+$', '')
  if p == '' then return p end
  home = home or os.getenv('HOME') or ''
  if p == '~' then return home end
  if p:sub(1, 2) == '~/' then p = home .. p:sub(2) end
  p = p:gsub('%$(%b{})', function(name) return os.getenv(name:sub(2, -2)) or '' end)
  return p
end

--- `settings` → the server object: zeros left out (server default), model, template, backend
--- and the remote strings always sent ('' = default), trigger and backend normalised.
function M.server_settings(s, home)
  s = s or {}
  local out = {}
  out.model = M.expand_path(s.model or '', home)
  for _, k in ipairs({ 'threads', 'contextSize', 'maxTokens', 'timeBudgetMs' }) do
    local v = positive_int(s[k])
    if v then out[k] = v end
  end
  local rc = type(s.repoContext) == 'table' and s.repoContext or {}
  out.repoContext = { enabled = rc.enabled ~= false, recentFiles = rc.recentFiles ~= false }
  local b = positive_int(rc.budgetTokens)
  if b then out.repoContext.budgetTokens = b end
  local w = type(s.window) == 'table' and s.window or {}
  local win = {}
  for _, k in ipairs({ 'prefixChars', 'suffixChars' }) do
    local v = positive_int(w[k])
    if v then win[k] = v end
  end
  if next(win) then out.window = win end
  local pf = type(s.prefill) == 'table' and s.prefill or {}
  out.prefill = { enabled = pf.enabled ~= false }
  out.fimTemplate = type(s.fimTemplate) == 'string' and s.fimTemplate or ''
  out.trigger = s.trigger == 'manual' and 'manual' or 'automatic'
  out.backend = (s.backend == 'llama-server' or s.backend == 'openai') and s.backend or 'local'
  -- Strings always go ('' = unset), so that clearing one reaches a running server.
  local r = type(s.remote) == 'table' and s.remote or {}
  local function str(v)
    if type(v) ~= 'string' then return '' end
    return (v:gsub('^%s+', ''):gsub('%s+$', ''))
  end
  out.remote = {
    endpoint = str(r.endpoint),
    model = str(r.model),
    apiKeyFile = M.expand_path(r.apiKeyFile or '', home),
    caFile = M.expand_path(r.caFile or '', home),
  }
  local t = positive_int(r.timeoutMs)
  if t then out.remote.timeoutMs = t end
  return out
end

--- Answers one `workspace/configuration` item: `ghostline` or a dotted path below it.
function M.configuration_item(section, settings)
  if section == nil then return vim.NIL end
  if section == 'ghostline' then return settings end
  if section:sub(1, #'ghostline.') ~= 'ghostline.' then return vim.NIL end
  local cur = settings
  for part in section:sub(#'ghostline.' + 1):gmatch('[^.]+') do
    if type(cur) ~= 'table' then return vim.NIL end
    cur = cur[part]
  end
  if cur == nil then return vim.NIL end
  return cur
end

return M
