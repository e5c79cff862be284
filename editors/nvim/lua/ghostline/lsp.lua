--- ghostline.lsp: starts and tracks the `ghostline` language server with Neovim's built-in
--- client (one client per workspace root), keeps its state for the statusline and
--- :checkhealth, pushes settings, and restarts it with backoff when it crashes.
--- Works on Neovim 0.7 (`vim.lsp.start_client` + `buf_attach_client`) and newer
--- (`vim.lsp.start`). It shows no suggestions itself: see ghostline.ghost.
local uv = vim.uv or vim.loop
local config = require('ghostline.config')

local M = {}

M.name = 'ghostline'
--- { state = 'stopped'|'starting'|'loading'|'ready'|'generating'|'idle'|'error'|'disabled', message?, percentage? }
M.status = { state = 'stopped' }
--- Last messages of the server (window/showMessage, exits), newest last, for :checkhealth.
M.events = {}

local opts -- resolved plugin options (set by M.setup)
local roots = {} -- root_dir -> { client_id = n, bufs = { [bufnr] = true }, crashes = { times }, stopping = bool }
local status_listeners = {}

local function now_ms()
  return uv.now()
end

function M.events_add(msg)
  table.insert(M.events, os.date('%H:%M:%S') .. ' ' .. msg)
  while #M.events > 20 do table.remove(M.events, 1) end
end
local add_event = M.events_add

function M.on_status(fn)
  table.insert(status_listeners, fn)
end

function M.set_status(s)
  M.status = s
  for _, fn in ipairs(status_listeners) do pcall(fn, s) end
  pcall(vim.api.nvim_exec_autocmds, 'User', { pattern = 'GhostlineStatus', modeline = false })
end

--- The server command: `cmd` option, else $GHOSTLINE_BIN, else `ghostline` on PATH.
--- Returns (cmd list, nil) or (nil, reason).
function M.resolve_cmd(o)
  o = o or opts or config.defaults
  if o.cmd then
    local cmd = type(o.cmd) == 'string' and { o.cmd } or vim.deepcopy(o.cmd)
    cmd[1] = vim.fn.expand(cmd[1])
    if vim.fn.executable(cmd[1]) ~= 1 then
      return nil, ('cmd %q is not executable'):format(cmd[1])
    end
    return cmd
  end
  local env = os.getenv('GHOSTLINE_BIN')
  if env and env ~= '' then
    if vim.fn.executable(env) == 1 then return { vim.fn.fnamemodify(env, ':p') } end
    return nil, ('$GHOSTLINE_BIN (%s) is not executable'):format(env)
  end
  local exe = vim.fn.exepath('ghostline')
  if exe ~= '' then return { exe } end
  return nil, '`ghostline` is not on PATH (set `cmd` in setup{} or $GHOSTLINE_BIN)'
end

local function exists(p)
  return uv.fs_stat(p) ~= nil
end

--- The workspace root of a file: the nearest folder upwards holding a root marker, else the
--- current directory.
function M.root_dir(fname, markers)
  markers = markers or (opts and opts.root_markers) or config.defaults.root_markers
  local dir = fname ~= '' and vim.fn.fnamemodify(fname, ':p:h') or uv.cwd()
  while dir and dir ~= '' do
    for _, m in ipairs(markers) do
      if exists(dir .. '/' .. m) then return dir end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then break end
    dir = parent
  end
  return uv.cwd()
end

function M.server_settings()
  return config.server_settings(opts and opts.settings or config.defaults.settings)
end

--- Calls a client method on every version (`client:m()` on 0.11+, `client.m()` before).
function M.call(client, method, ...)
  if vim.fn.has('nvim-0.11') == 1 then
    return client[method](client, ...)
  end
  return client[method](...)
end

function M.get_client(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local list
  if vim.lsp.get_clients then -- 0.10+
    list = vim.lsp.get_clients({ bufnr = bufnr, name = M.name })
  elseif vim.fn.has('nvim-0.8') == 1 then
    list = vim.lsp.get_active_clients({ bufnr = bufnr, name = M.name })
  else
    list = vim.tbl_values(vim.lsp.buf_get_clients(bufnr))
  end
  for _, c in ipairs(list) do
    if c.name == M.name then return c end
  end
  return nil
end

function M.all_clients()
  local out = {}
  for _, r in pairs(roots) do
    local c = r.client_id and vim.lsp.get_client_by_id(r.client_id)
    if c then out[#out + 1] = c end
  end
  return out
end

local function is_echo_of_explanation(message)
  local ok, explain = pcall(require, 'ghostline.explain')
  return ok and explain.is_echo(message)
end

local function handlers()
  local h = {}
  h['ghostline/status'] = function(_, params)
    if type(params) ~= 'table' or type(params.state) ~= 'string' then return end
    local s = { state = params.state, message = params.message }
    if type(params.percentage) == 'number' then s.percentage = math.floor(params.percentage + 0.5) end
    if s.state == 'error' and s.message then add_event('error: ' .. s.message) end
    M.set_status(s)
  end
  h['ghostline/explainProgress'] = function(_, params)
    require('ghostline.explain').on_explain_progress(params)
  end
  h['$/progress'] = function(err, result, ctx, cfg)
    if type(result) == 'table' and require('ghostline.explain').on_progress(result) then return end
    -- Model loading: keep the percentage for the statusline even if the server's own
    -- ghostline/status does not carry it.
    if type(result) == 'table' and type(result.value) == 'table' and M.status.state == 'loading' then
      local v = result.value
      if type(v.percentage) == 'number' then
        M.set_status({ state = 'loading', message = M.status.message, percentage = v.percentage })
      end
    end
    local default = vim.lsp.handlers['$/progress']
    if default then return default(err, result, ctx, cfg) end
  end
  h['window/showMessage'] = function(err, result, ctx, cfg)
    if type(result) == 'table' and type(result.message) == 'string' then
      if result.type and result.type >= 3 and is_echo_of_explanation(result.message) then return end
      add_event(('message (%d): %s'):format(result.type or 0, result.message))
      if result.type == 1 then M.set_status({ state = 'error', message = result.message }) end
    end
    return vim.lsp.handlers['window/showMessage'](err, result, ctx, cfg)
  end
  return h
end

local function capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion or { dynamicRegistration = false }
  if opts and opts.lsp and opts.lsp.capabilities then
    caps = vim.tbl_deep_extend('force', caps, opts.lsp.capabilities)
  end
  return caps
end

local start_for_root -- forward

local function backoff_ms(n)
  return math.min(30000, 1000 * 2 ^ (n - 1))
end

local function on_exit(root, code, signal)
  local r = roots[root]
  if not r then return end
  r.client_id = nil
  if r.stopping or M.exiting or (code == 0 and (signal == nil or signal == 0)) then
    -- Stopped by us, by Neovim on exit, or the server ended normally: no restart.
    r.stopping = false
    M.set_status({ state = 'stopped' })
    return
  end
  local t = now_ms()
  local recent = {}
  for _, x in ipairs(r.crashes) do
    if t - x < 180000 then recent[#recent + 1] = x end
  end
  recent[#recent + 1] = t
  r.crashes = recent
  local n = #recent
  local why = ('exited with code %s%s'):format(tostring(code), signal and signal ~= 0 and (', signal ' .. signal) or '')
  add_event('server ' .. why)
  if n > 5 then
    local msg = ('ghostline: the server %s and crashed %d times in 3 minutes; not restarting. See :checkhealth ghostline, then :GhostlineRestart.'):format(why, n)
    M.set_status({ state = 'error', message = msg })
    vim.schedule(function() vim.notify(msg, vim.log.levels.ERROR) end)
    return
  end
  local delay = backoff_ms(n)
  local msg = ('ghostline: the server %s; restarting in %d s (attempt %d of 5).'):format(why, delay / 1000, n)
  M.set_status({ state = 'error', message = msg })
  vim.schedule(function() vim.notify(msg, vim.log.levels.WARN) end)
  vim.defer_fn(function()
    local rr = roots[root]
    if not rr or rr.client_id then return end
    start_for_root(root)
  end, delay)
end

--- Starts (or reuses) the client for `root` and attaches the buffers recorded for it.
start_for_root = function(root)
  local r = roots[root]
  if r.client_id and vim.lsp.get_client_by_id(r.client_id) then
    return r.client_id
  end
  local cmd, why = M.resolve_cmd(opts)
  if not cmd then
    M.set_status({ state = 'error', message = 'server not found: ' .. why })
    add_event('server not found: ' .. why)
    return nil
  end
  local settings = M.server_settings()
  local cfg = vim.tbl_extend('force', {}, opts.lsp or {}, {
    name = M.name,
    cmd = cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = settings,
    settings = { ghostline = settings },
    capabilities = capabilities(),
    handlers = vim.tbl_extend('force', handlers(), (opts.lsp or {}).handlers or {}),
    flags = vim.tbl_extend('keep', (opts.lsp or {}).flags or {}, { debounce_text_changes = 50, allow_incremental_sync = true }),
    on_exit = function(code, signal, _)
      vim.schedule(function() on_exit(root, code, signal) end)
      if opts.lsp and opts.lsp.on_exit then opts.lsp.on_exit(code, signal) end
    end,
    on_init = function(client, result)
      if M.status.state == 'starting' or M.status.state == 'stopped' then M.set_status({ state = 'loading' }) end
      if opts.lsp and opts.lsp.on_init then return opts.lsp.on_init(client, result) end
    end,
    on_attach = function(client, bufnr)
      require('ghostline.ghost').on_attach(client, bufnr)
      if opts.lsp and opts.lsp.on_attach then opts.lsp.on_attach(client, bufnr) end
    end,
  })
  M.set_status({ state = 'starting' })
  local id
  local first
  for b in pairs(r.bufs) do
    if vim.api.nvim_buf_is_valid(b) then first = b break end
  end
  if vim.lsp.start and vim.fn.has('nvim-0.8') == 1 and first then
    id = vim.lsp.start(cfg, {
      bufnr = first,
      reuse_client = function(c, conf) return c.name == M.name and c.config.root_dir == conf.root_dir end,
    })
  else
    id = vim.lsp.start_client(cfg)
  end
  if id then
    for b in pairs(r.bufs) do
      if vim.api.nvim_buf_is_valid(b) then vim.lsp.buf_attach_client(b, id) end
    end
  end
  if not id then
    M.set_status({ state = 'error', message = 'failed to start ' .. table.concat(cmd, ' ') })
    return nil
  end
  r.client_id = id
  return id
end

--- Attaches ghostline to `bufnr` (starting the server for its root if needed).
function M.attach(bufnr)
  if vim.bo[bufnr].buftype ~= '' then return end
  local fname = vim.api.nvim_buf_get_name(bufnr)
  local root = M.root_dir(fname)
  roots[root] = roots[root] or { bufs = {}, crashes = {} }
  local r = roots[root]
  r.bufs[bufnr] = true
  if r.client_id and vim.lsp.get_client_by_id(r.client_id) then
    vim.lsp.buf_attach_client(bufnr, r.client_id)
    return r.client_id
  end
  return start_for_root(root)
end

--- Stops every ghostline client (no restart).
function M.stop()
  for _, r in pairs(roots) do
    local c = r.client_id and vim.lsp.get_client_by_id(r.client_id)
    if c then
      r.stopping = true
      M.call(c, 'stop')
    end
  end
end

--- Stops and starts again (crash counters reset).
function M.restart()
  M.stop()
  local t0 = now_ms()
  local function again()
    for _, r in pairs(roots) do
      if r.client_id and vim.lsp.get_client_by_id(r.client_id) and now_ms() - t0 < 5000 then
        return vim.defer_fn(again, 100)
      end
    end
    for root, r in pairs(roots) do
      r.client_id, r.crashes, r.stopping = nil, {}, false
      start_for_root(root)
    end
  end
  vim.defer_fn(again, 100)
end

--- Sends new settings to every running server.
function M.push_settings()
  local settings = M.server_settings()
  for _, c in ipairs(M.all_clients()) do
    c.config.settings = { ghostline = settings }
    M.call(c, 'notify', 'workspace/didChangeConfiguration', { settings = { ghostline = settings } })
  end
end

--- The LSP log file (Neovim writes the server's stderr there).
function M.log_path()
  if vim.lsp.log and vim.lsp.log.get_filename then return vim.lsp.log.get_filename() end
  return vim.lsp.get_log_path()
end

function M.setup(o)
  opts = o
  vim.api.nvim_create_autocmd('VimLeavePre', {
    group = vim.api.nvim_create_augroup('ghostline_exit', { clear = true }),
    callback = function() M.exiting = true end,
  })
end

return M
