--- :checkhealth ghostline — the server binary, the model, and the server's state.
--- Works with both health APIs (0.7/0.8 `report_*`, 0.9+ `start/ok/warn/error/info`).
local uv = vim.uv or vim.loop
local M = {}

local function api()
  local h = vim.health or require('health')
  return {
    start = h.start or h.report_start,
    ok = h.ok or h.report_ok,
    warn = h.warn or h.report_warn,
    error = h.error or h.report_error,
    info = h.info or h.report_info,
  }
end

local function default_model()
  local cache = os.getenv('XDG_CACHE_HOME')
  if not cache or cache == '' then cache = (os.getenv('HOME') or '') .. '/.cache' end
  return cache .. '/ghostline/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf'
end

function M.check()
  local h = api()
  local ok_g, g = pcall(require, 'ghostline')
  local lsp = require('ghostline.lsp')
  local ghost = require('ghostline.ghost')
  local opts = ok_g and g.options() or nil

  h.start('ghostline: Neovim')
  local v = vim.version()
  h.info(('Neovim %d.%d.%d'):format(v.major, v.minor, v.patch))
  if vim.fn.has('nvim-0.7') == 0 then
    h.error('Neovim 0.7 or newer is needed')
  end
  if not opts then
    h.warn('require("ghostline").setup{} has not run: nothing is attached', { 'Call setup() in your init.lua' })
    return
  end
  if ghost.native_available() then
    h.ok(('vim.lsp.inline_completion is available; native mode: %s'):format(ghost.use_native() and 'on' or 'off (option native = ' .. tostring(opts.native) .. ')'))
  else
    h.info('vim.lsp.inline_completion not available (Neovim < 0.12): the plugin draws ghost text with extmarks')
  end
  h.info('filetypes: ' .. table.concat(opts.filetypes, ', '))

  h.start('ghostline: server binary')
  local cmd, why = lsp.resolve_cmd(opts)
  if not cmd then
    h.error('server not found: ' .. why, { 'Build it: cargo build --release (binary at target/release/ghostline)', 'Then put it on PATH, or setup{ cmd = { "/path/to/ghostline" } }' })
  else
    h.ok('server: ' .. table.concat(cmd, ' '))
    -- Ask for the version without risking a server that waits on stdin forever.
    local out = {}
    local ok_job, job = pcall(vim.fn.jobstart, { cmd[1], '--version' }, {
      stdout_buffered = true,
      on_stdout = function(_, data) out = data or {} end,
    })
    if ok_job and job > 0 then
      local res = vim.fn.jobwait({ job }, 3000)[1]
      if res == -1 then vim.fn.jobstop(job) end
      local version = table.concat(out, ' '):gsub('%s+$', '')
      if res == 0 and version ~= '' then h.info('version: ' .. version) end
    end
  end

  h.start('ghostline: model')
  local settings = lsp.server_settings()
  local model, from = settings.model, 'setup{ settings = { model = … } }'
  if model == '' then
    local env = os.getenv('GHOSTLINE_MODEL')
    if env and env ~= '' then model, from = env, '$GHOSTLINE_MODEL' else model, from = default_model(), 'the server default' end
  end
  local st = uv.fs_stat(model)
  if st and st.type == 'file' then
    h.ok(('model (%s): %s (%.0f MB)'):format(from, model, st.size / 1e6))
  else
    h.error(('model (%s) not found: %s'):format(from, model), { 'Fetch the default model: scripts/fetch-model.sh (or scripts/fetch-model.sh 0.5b for the faster one)' })
  end

  h.start('ghostline: server state')
  local clients = lsp.all_clients()
  local s = lsp.status
  local line = ('state: %s%s%s'):format(s.state, s.percentage and (' ' .. s.percentage .. '%') or '', s.message and (' — ' .. s.message) or '')
  if s.state == 'error' then h.error(line)
  elseif s.state == 'ready' or s.state == 'idle' or s.state == 'generating' then h.ok(line)
  else h.info(line) end
  if #clients == 0 then
    h.info('no ghostline client running (open a file of a configured filetype)')
  else
    for _, c in ipairs(clients) do
      local caps = c.server_capabilities or c.resolved_capabilities or {}
      local inline = caps.inlineCompletionProvider ~= nil
      h.info(('client %d: root %s, encoding %s'):format(c.id, c.config.root_dir or '?', c.offset_encoding or '?'))
      if inline then h.ok('server advertises inlineCompletionProvider')
      else h.warn('server does not advertise inlineCompletionProvider') end
    end
  end
  h.info('suggestions: ' .. (ghost.is_enabled() and 'enabled' or 'disabled (:GhostlineToggle)'))
  if #lsp.events > 0 then
    h.info('recent events:\n' .. table.concat(lsp.events, '\n'))
  end
  h.info('server log: ' .. lsp.log_path() .. ' (stderr of the server; raise with vim.lsp.set_log_level("info"))')
end

return M
