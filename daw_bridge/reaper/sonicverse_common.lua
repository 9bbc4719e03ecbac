-- @noindex
-- SonicVerse for REAPER: shared code of the SonicVerse ReaScripts.
--
-- ReaScript Lua has no UDP socket, so the scripts start `sonicverse send <address>
-- --args-file <json> --output <reply>` in the background through reaper.ExecProcess (no shell,
-- no wait), poll for the reply file from reaper.defer (REAPER stays responsive; a small window
-- shows progress, Esc cancels) and decode it. Audio travels by reference: the scripts render
-- what is selected to a temporary folder through the project's render settings (with the
-- post-processing switched off, then action 42230), restore those settings, and send the
-- rendered file's path.
--
-- Settings ("SonicVerse: configure", kept in REAPER's ExtState section "SonicVerse"):
-- command (default "sonicverse"; give the full path when REAPER's PATH lacks it), host, port,
-- token.

local M = {}

M.SECTION = "SonicVerse"
M.TAG = "SV:"                       -- prefix of the take markers / project markers we own
M.NOTES_BEGIN = "[SonicVerse]"      -- our block in item / project notes
M.NOTES_END = "[/SonicVerse]"
M.WAV24 = "ZXZhdxgAAQ=="            -- RENDER_FORMAT: WAV 24-bit, the 7 bytes "evaw" 24 0 1
                                    -- that current REAPER writes (base64)
M.RENDER_ACTION = 42230             -- File: Render project, most recent settings, auto-close

-- Addresses used by the scripts (declared in daw_bridge/protocol.py; a test checks them).
M.ANNOTATE = "/sonicverse/region/annotate"
M.NARRATE = "/sonicverse/track/narrate"
M.PING = "/sonicverse/engine/ping"

------------------------------------------------------------------------------------------
-- JSON (decode only: what `sonicverse send` prints)
------------------------------------------------------------------------------------------

local json_null = setmetatable({}, { __tostring = function() return "null" end })
M.null = json_null

local function json_error(s, i, what)
  error(string.format("bad JSON at %d: %s near %q", i, what, s:sub(i, i + 20)), 0)
end

local decode_value

local function skip(s, i)
  local _, e = s:find("^[ \t\r\n]*", i)
  return e + 1
end

local function utf8_char(cp)
  if utf8 and utf8.char then return utf8.char(cp) end
  return "?"
end

local function decode_string(s, i)
  local out, j = {}, i + 1
  while true do
    local c = s:sub(j, j)
    if c == "" then json_error(s, i, "unterminated string") end
    if c == '"' then return table.concat(out), j + 1 end
    if c == "\\" then
      local e = s:sub(j + 1, j + 1)
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
      if map[e] then out[#out + 1] = map[e]; j = j + 2
      elseif e == "u" then
        local cp = tonumber(s:sub(j + 2, j + 5), 16) or json_error(s, j, "bad \\u escape")
        j = j + 6
        if cp >= 0xD800 and cp <= 0xDBFF and s:sub(j, j + 1) == "\\u" then
          local lo = tonumber(s:sub(j + 2, j + 5), 16)
          if lo and lo >= 0xDC00 and lo <= 0xDFFF then
            cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
            j = j + 6
          end
        end
        out[#out + 1] = utf8_char(cp)
      else out[#out + 1] = e; j = j + 2 end
    else
      local k = s:find('["\\]', j) or (#s + 1)
      out[#out + 1] = s:sub(j, k - 1)
      j = k
    end
  end
end

decode_value = function(s, i)
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "{" then
    local obj = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return obj, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then json_error(s, i, "expected a key") end
      local key
      key, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then json_error(s, i, "expected ':'") end
      obj[key], i = decode_value(s, i + 1)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return obj, i + 1 end
      if d ~= "," then json_error(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  elseif c == "[" then
    local arr = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return arr, i + 1 end
    while true do
      arr[#arr + 1], i = decode_value(s, i)
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return arr, i + 1 end
      if d ~= "," then json_error(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  elseif c == '"' then return decode_string(s, i)
  elseif s:sub(i, i + 3) == "true" then return true, i + 4
  elseif s:sub(i, i + 4) == "false" then return false, i + 5
  elseif s:sub(i, i + 3) == "null" then return json_null, i + 4
  else
    local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
    if not num or num == "" then json_error(s, i, "unexpected character") end
    return tonumber(num), i + #num
  end
end

function M.json_decode(s)
  local value, i = decode_value(s, 1)
  i = skip(s, i)
  if i <= #s then json_error(s, i, "trailing characters") end
  return value
end

-- JSON text of a number, the same in every locale: REAPER and Ardour run in the user's locale,
-- where string.format("%.17g", 1.5) writes "1,5". NaN and infinities have no JSON form: null.
function M.json_number(v)
  if v ~= v or v == math.huge or v == -math.huge then return "null" end
  if math.type(v) == "integer" then return string.format("%d", v) end
  local text = string.format("%.17g", v)
  local point = string.format("%.1f", 0.5):match("^0(.+)5$")   -- this locale's separator
  if point and point ~= "." then
    local i, j = text:find(point, 1, true)
    if i then text = text:sub(1, i - 1) .. "." .. text:sub(j + 1) end
  end
  return text
end

-- JSON text of a list of {start_s, end_s, name} spans (the `regions` argument of narrate).
function M.json_spans(spans)
  local parts = {}
  for _, sp in ipairs(spans) do
    local name = sp[3]:gsub('[%c"\\]', function(ch)
      return string.format("\\u%04x", ch:byte())
    end)
    parts[#parts + 1] = "[" .. M.json_number(sp[1]) .. "," .. M.json_number(sp[2]) .. ',"'
                        .. name .. '"]'
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

------------------------------------------------------------------------------------------
-- Settings and `sonicverse send`
------------------------------------------------------------------------------------------

-- JSON text of a string.
function M.json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(ch)
    return string.format("\\u%04x", ch:byte())
  end) .. '"'
end

-- JSON text of a flat table of strings and numbers (the --args-file of `sonicverse send`).
function M.json_object(t)
  local names, parts = {}, {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = t[k]
    local text = type(v) == "number" and M.json_number(v) or M.json_string(v)
    parts[#parts + 1] = M.json_string(k) .. ":" .. text
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

function M.setting(key, default)
  local v = reaper.GetExtState(M.SECTION, key)
  if v == nil or v == "" then return default end
  return v
end

-- The "SonicVerse: configure" action: where `sonicverse` lives (REAPER started from the macOS
-- Finder has a minimal PATH, so give the full path), the engine's host, port and token.
function M.configure()
  local ok, csv = reaper.GetUserInputs("SonicVerse engine", 4,
    "sonicverse command (full path),host,port,token,extrawidth=250",
    table.concat({ M.setting("command", "sonicverse"), M.setting("host", "127.0.0.1"),
                   M.setting("port", "9000"), M.setting("token", "") }, ","))
  if not ok then return false end
  local fields, k = {}, 0
  for f in (csv .. ","):gmatch("([^,]*),") do k = k + 1; fields[k] = f end
  local keys = { "command", "host", "port", "token" }
  for n, key in ipairs(keys) do
    if (fields[n] or ""):find('"', 1, true) then
      reaper.ShowMessageBox(key .. " may not contain a double quote", "SonicVerse", 0)
      return false
    end
  end
  if not tonumber(fields[3]) then
    reaper.ShowMessageBox("port must be a number, got " .. tostring(fields[3]), "SonicVerse", 0)
    return false
  end
  for n, key in ipairs(keys) do reaper.SetExtState(M.SECTION, key, fields[n] or "", true) end
  return true
end

-- ExecProcess runs a program without a shell: it splits the line at spaces and honours double
-- quotes, nothing else (ReaScript docs: "ExecProcess(cmdline, timeoutmsec) ... -1 for no
-- wait/terminate, -2 for no wait and minimize"). Double-quote every word that may hold a space;
-- names and paths travel in the --args-file, never on the command line.
function M.dquote(s)
  return '"' .. tostring(s) .. '"'
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

local function write_file(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  f:write(text)
  f:close()
  return true
end

local job_counter = 0

-- Start `sonicverse send` in the background. Returns a job table (poll it with M.poll) or
-- nil, reply (an error reply table).
function M.start(address, args, timeout_s)
  timeout_s = timeout_s or 120
  local command = M.setting("command", "sonicverse")
  if command:find("[/\\]") and not reaper.file_exists(command) then
    return nil, { ok = false, code = "exec",
                  message = command .. " does not exist: run \"Script: sonicverse_configure.lua\"" }
  end
  job_counter = job_counter + 1
  local base = string.format("%s/job_%d_%d", M.temp_dir(), math.floor(reaper.time_precise() * 1000),
                             job_counter)
  local job = { args = base .. "_args.json", reply = base .. "_reply.json",
                progress = base .. "_progress.json", cancel = base .. "_cancel",
                deadline = reaper.time_precise() + timeout_s + 15, address = address }
  for _, p in ipairs({ job.reply, job.progress, job.cancel }) do os.remove(p) end
  local ok, err = write_file(job.args, M.json_object(args or {}))
  if not ok then return nil, { ok = false, code = "exec", message = tostring(err) } end
  local parts = { M.dquote(command), "send", address, "--args-file", M.dquote(job.args),
                  "--output", M.dquote(job.reply), "--progress-file", M.dquote(job.progress),
                  "--cancel-file", M.dquote(job.cancel),
                  "--host", M.dquote(M.setting("host", "127.0.0.1")),
                  "--port", tostring(math.floor(tonumber(M.setting("port", "9000")) or 9000)),
                  "--timeout", tostring(timeout_s) }
  local token = M.setting("token", "")
  if token ~= "" then parts[#parts + 1] = "--token"; parts[#parts + 1] = M.dquote(token) end
  job.cmd = table.concat(parts, " ")
  if not reaper.ExecProcess(job.cmd, -2) then
    os.remove(job.args)
    return nil, { ok = false, code = "exec",
                  message = "could not run: " .. job.cmd .. "\nRun \"Script: sonicverse_configure.lua\"." }
  end
  return job
end

-- Ask a running job to stop; its reply becomes a 'cancelled' error.
function M.cancel(job)
  write_file(job.cancel, "")
end

-- nil while the job runs; its reply table once it finished. job.stage / done / total follow
-- the engine's progress.
function M.poll(job)
  local text = read_file(job.reply)
  if text then
    for _, p in ipairs({ job.args, job.reply, job.progress, job.cancel }) do os.remove(p) end
    local line = text:match("({.*})")
    local okj, reply = pcall(M.json_decode, line or "")
    if not okj then return { ok = false, code = "exec", message = tostring(reply) } end
    return reply
  end
  local progress = read_file(job.progress)
  if progress then
    local okj, p = pcall(M.json_decode, progress:match("({.*})") or "")
    if okj then job.stage, job.done, job.total = p.progress, p.done, p.total end
  end
  if reaper.time_precise() > job.deadline then
    for _, p in ipairs({ job.args, job.reply, job.progress, job.cancel }) do os.remove(p) end
    return { ok = false, code = "exec",
             message = "no reply from `sonicverse send` (" .. job.cmd .. ")\n"
                       .. "Is the engine running (sonicverse engine)? "
                       .. "Is the command right (\"Script: sonicverse_configure.lua\")?" }
  end
  return nil
end

function M.fail(reply)
  reaper.ShowMessageBox(string.format("%s: %s", tostring(reply.code), tostring(reply.message)),
                        "SonicVerse", 0)
end

-- Run `steps` one after the other from reaper.defer, so REAPER stays responsive. Each step is
-- { label = text, prepare = function() -> address, args, timeout_s | nil, error reply,
--   apply = function(result), cleanup = optional function run once its request ended }.
-- A prepare that answers nil, { code = "skip", message = ... } is passed over; the messages
-- are shown together at the end. A small window shows progress; Esc or closing it cancels.
-- `finish(failure)` runs at the end (failure: nil, or the first error reply).
function M.run_steps(title, steps, finish)
  local i, job, cancelled, skipped = 0, nil, false, {}
  gfx.init(title, 420, 70)
  local function cleanup(step)
    if step and step.cleanup then step.cleanup(); step.cleanup = nil end
  end
  local function done(failure)
    gfx.quit()
    cleanup(steps[i])
    if finish then finish(failure) end
    if failure and failure.code ~= "cancelled" then M.fail(failure)
    elseif #skipped > 0 then
      reaper.ShowMessageBox(table.concat(skipped, "\n"), "SonicVerse", 0)
    end
  end
  local function draw()
    gfx.set(0.15, 0.15, 0.15); gfx.rect(0, 0, gfx.w, gfx.h, 1)
    gfx.set(0.9, 0.9, 0.9)
    gfx.x, gfx.y = 10, 10
    local step = steps[i] or {}
    local stage = job and job.stage and string.format(" · %s %s/%s", job.stage,
      tostring(job.done), tostring(job.total)) or ""
    gfx.drawstr(string.format("%d/%d %s%s", i, #steps, step.label or "", stage))
    gfx.x, gfx.y = 10, 40
    gfx.drawstr(cancelled and "cancelling..." or "Esc or close this window to cancel")
    gfx.update()
  end
  local function tick()
    local ch = gfx.getchar()
    if (ch == 27 or ch < 0) and not cancelled then
      cancelled = true
      if job then M.cancel(job) else return done({ ok = false, code = "cancelled" }) end
    end
    if job then
      local reply = M.poll(job)
      if reply then
        job = nil
        cleanup(steps[i])
        if not reply.ok then return done(reply) end
        steps[i].apply(reply.result)
        if cancelled then return done({ ok = false, code = "cancelled" }) end
      end
    end
    if not job then
      i = i + 1
      if i > #steps then return done(nil) end
      local address, args, timeout_s = steps[i].prepare()
      while not address and args and args.code == "skip" do   -- e.g. a MIDI or deleted item
        skipped[#skipped + 1] = args.message
        i = i + 1
        if i > #steps then return done(nil) end
        address, args, timeout_s = steps[i].prepare()
      end
      if not address then return done(args) end
      local err
      job, err = M.start(address, args, timeout_s)
      if not job then return done(err) end
    end
    draw()
    reaper.defer(tick)
  end
  reaper.defer(tick)
end

------------------------------------------------------------------------------------------
-- Rendering through the project's render settings
------------------------------------------------------------------------------------------

-- Saved, set for the analysis render, then restored. Post-processing would change what we
-- measure: RENDER_NORMALIZE (normalise, limiter, fades, trim/pad silence) goes to 0,
-- RENDER_FORMAT2 (a second format) to "", RENDER_DITHER to 0.
-- RENDER_SRATE / RENDER_CHANNELS come from the user's last render (8 kHz mono happens): the
-- analysis renders M.RENDER_SRATE stereo.
local RENDER_KEYS_NUM = { "RENDER_SETTINGS", "RENDER_BOUNDSFLAG", "RENDER_STARTPOS",
                          "RENDER_ENDPOS", "RENDER_ADDTOPROJ", "RENDER_TAILFLAG",
                          "RENDER_NORMALIZE", "RENDER_DITHER", "RENDER_SRATE",
                          "RENDER_CHANNELS" }
M.RENDER_SRATE = 48000
M.MIN_REAPER = 7                    -- RENDER_NORMALIZE is in the SDK from REAPER 7.0
local RENDER_KEYS_STR = { "RENDER_FILE", "RENDER_PATTERN", "RENDER_FORMAT", "RENDER_FORMAT2" }

function M.save_render_settings()
  local saved = { num = {}, str = {} }
  for _, k in ipairs(RENDER_KEYS_NUM) do saved.num[k] = reaper.GetSetProjectInfo(0, k, 0, false) end
  for _, k in ipairs(RENDER_KEYS_STR) do
    local _, v = reaper.GetSetProjectInfo_String(0, k, "", false)
    saved.str[k] = v
  end
  return saved
end

function M.restore_render_settings(saved)
  for k, v in pairs(saved.num) do reaper.GetSetProjectInfo(0, k, v, true) end
  for k, v in pairs(saved.str) do reaper.GetSetProjectInfo_String(0, k, v, true) end
end

function M.temp_dir()
  local base = os.getenv("TMPDIR") or os.getenv("TEMP") or os.getenv("TMP") or "/tmp"
  local dir = base:gsub("[/\\]$", "") .. "/sonicverse"
  reaper.RecursiveCreateDirectory(dir, 0)
  return dir
end

-- Render with `source` (RENDER_SETTINGS: 0 master mix, 32 selected media items) and `bounds`
-- (RENDER_BOUNDSFLAG: 0 custom start_s/end_s, 4 selected items) to <temp>/<stem>.wav.
-- Returns the rendered file's path (from RENDER_TARGETS) or nil, message.
function M.render(stem, source, bounds, start_s, end_s)
  local major = tonumber((reaper.GetAppVersion() or ""):match("^(%d+)"))
  if not major or major < M.MIN_REAPER then
    return nil, "SonicVerse needs REAPER " .. M.MIN_REAPER .. ".0 or later (this is "
                .. tostring(reaper.GetAppVersion()) .. ")"
  end
  local dir = M.temp_dir()
  local saved = M.save_render_settings()
  reaper.GetSetProjectInfo(0, "RENDER_SETTINGS", source, true)
  reaper.GetSetProjectInfo(0, "RENDER_BOUNDSFLAG", bounds, true)
  if start_s then reaper.GetSetProjectInfo(0, "RENDER_STARTPOS", start_s, true) end
  if end_s then reaper.GetSetProjectInfo(0, "RENDER_ENDPOS", end_s, true) end
  reaper.GetSetProjectInfo(0, "RENDER_ADDTOPROJ", 0, true)
  reaper.GetSetProjectInfo(0, "RENDER_TAILFLAG", 0, true)
  reaper.GetSetProjectInfo(0, "RENDER_NORMALIZE", 0, true)
  reaper.GetSetProjectInfo(0, "RENDER_DITHER", 0, true)
  reaper.GetSetProjectInfo(0, "RENDER_SRATE", M.RENDER_SRATE, true)
  reaper.GetSetProjectInfo(0, "RENDER_CHANNELS", 2, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_FILE", dir, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_PATTERN", stem, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_FORMAT", M.WAV24, true)
  reaper.GetSetProjectInfo_String(0, "RENDER_FORMAT2", "", true)
  -- RENDER_TARGETS: semicolon-separated files the render will write (read-only key)
  local _, targets = reaper.GetSetProjectInfo_String(0, "RENDER_TARGETS", "", false)
  local path = (targets or ""):match("^([^;]+)")
  if path then os.remove(path) end
  reaper.Main_OnCommand(M.RENDER_ACTION, 0)
  M.restore_render_settings(saved)
  if not path or not reaper.file_exists(path) then
    return nil, "rendering to " .. dir .. "/" .. stem .. " produced no file"
  end
  return path
end

------------------------------------------------------------------------------------------
-- Writing results back (idempotent: running twice leaves one copy)
------------------------------------------------------------------------------------------

-- True for a JSON value that is neither missing nor null.
-- The whole project rendered for the engine: its path and the project's length, or nil after
-- telling the user why (an empty project, a failed render).
function M.render_project(stem)
  local length = reaper.GetProjectLength(0)
  if length <= 0 then
    reaper.ShowMessageBox("The project is empty.", "SonicVerse", 0)
    return nil
  end
  local path, err = M.render(stem, 0, 0, 0, length)
  if not path then M.fail({ code = "render", message = err }); return nil end
  return path, length
end

function M.has(v)
  return v ~= nil and v ~= json_null
end

-- A singer's gender is named when P(that gender | vocals) is at least this, as
-- daw_bridge.keys.GENDER_CONFIDENCE; otherwise the summary says just "vocals".
M.GENDER_CONFIDENCE = 0.7

-- "female vocals", "vocals" (gender unsure) or "no vocals" from a vocals estimate.
function M.vocals_words(v)
  if v.label == "none" then return "no vocals" end
  local p = v.probabilities
  if type(p) == "table" and #p == 3 and (v.label == "male" or v.label == "female") then
    local sung = 1.0 - p[1]
    local share = v.label == "male" and p[2] or p[3]
    if sung <= 0 or share / sung < M.GENDER_CONFIDENCE then return "vocals" end
  end
  return v.label .. " vocals"
end

-- "A minor · female vocals · 124 BPM" from a RegionAnnotation dict.
function M.summary(ann)
  local bits = {}
  if ann.silent == true then return "silence" end
  if M.has(ann.key) then bits[#bits + 1] = ann.key.key end
  if M.has(ann.vocals) then
    bits[#bits + 1] = M.vocals_words(ann.vocals)
  end
  if type(ann.tempo_bpm) == "number" then
    bits[#bits + 1] = string.format("%.0f BPM", ann.tempo_bpm)
  end
  return table.concat(bits, " · ")
end

-- Replace our [SonicVerse]...[/SonicVerse] block in `notes` with `body` (or append it).
function M.replace_block(notes, body)
  notes = notes or ""
  local block = M.NOTES_BEGIN .. "\n" .. body .. "\n" .. M.NOTES_END
  local b = notes:find(M.NOTES_BEGIN, 1, true)
  local _, e = notes:find(M.NOTES_END, 1, true)
  if b and e and e > b then return notes:sub(1, b - 1) .. block .. notes:sub(e + 1) end
  if notes ~= "" and not notes:match("\n$") then notes = notes .. "\n" end
  return notes .. block
end

-- Remove our " [SV ...]" suffix from a name, then add the new one.
function M.tag_name(name, text)
  local base = (name or ""):gsub("%s*%[SV [^%]]*%]$", "")
  if text == nil or text == "" then return base end
  return (base ~= "" and (base .. " ") or "") .. "[SV " .. text .. "]"
end

function M.clear_take_markers(take)
  for idx = reaper.GetNumTakeMarkers(take) - 1, 0, -1 do
    local _, name = reaper.GetTakeMarker(take, idx)
    if name and name:sub(1, #M.TAG) == M.TAG then reaper.DeleteTakeMarker(take, idx) end
  end
end

-- Project markers and regions are addressed by their index in EnumProjectMarkers3's order:
-- their displayed numbers need not be unique (markers and regions are numbered separately,
-- and REAPER lets two regions share a number), so the *ByNumber calls may hit the wrong one.

-- The current index of the marker/region `m` ({ isrgn, pos, rgnend, number, name } as it was
-- enumerated), or nil when it was deleted or changed meanwhile.
function M.find_marker(m)
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = 0, num_markers + num_regions - 1 do
    local _, isrgn, pos, rgnend, name, number = reaper.EnumProjectMarkers3(0, idx)
    if isrgn == m.isrgn and number == m.number and name == m.name
       and math.abs(pos - m.pos) < 1e-9 and (not isrgn or math.abs(rgnend - m.rgnend) < 1e-9) then
      return idx
    end
  end
  return nil
end

-- Rename the marker/region at index `idx`. SetProjectMarkerByIndex2's flags&1 clears the
-- name (an empty name is otherwise ignored).
function M.rename_marker(idx, isrgn, pos, rgnend, number, name, color)
  return reaper.SetProjectMarkerByIndex2(0, idx, isrgn, pos, rgnend, number, name, color,
                                         name == "" and 1 or 0)
end

function M.clear_project_markers()
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = num_markers + num_regions - 1, 0, -1 do
    local _, isrgn, _, _, name = reaper.EnumProjectMarkers3(0, idx)
    if not isrgn and name and name:sub(1, #M.TAG) == M.TAG then
      reaper.DeleteProjectMarkerByIndex(0, idx)
    end
  end
end

------------------------------------------------------------------------------------------
-- The project tempo from the engine's beat grid
------------------------------------------------------------------------------------------

M.TEMPO_KEY = "tempo_markers"       -- ProjExtState: the tempo markers we wrote, "<s> <bpm>;..."

-- REAPER counts tempo in quarter notes; the grid's beat in 6/8 is a dotted quarter.
local QUARTERS_PER_BEAT = { ["6/8"] = 1.5 }

-- The tempo markers a narrate result asks for: { time = s, bpm = quarter notes per minute,
-- num, den (0, 0: keep the time signature) } at the first downbeat (with the meter), then at
-- the start of each later tempo span. nil, a message when the grid has no downbeat.
function M.tempo_markers(result)
  local downbeat
  for _, b in ipairs(type(result.beats) == "table" and result.beats or {}) do
    if b.position == 1 then downbeat = b.time_s; break end
  end
  if not downbeat or type(result.tempo_bpm) ~= "number" then
    return nil, "The engine found no beat in the project's mix: the tempo is left as it was."
  end
  local meter = M.has(result.meter) and result.meter or ""
  local num, den = meter:match("^(%d+)/(%d+)$")
  local scale = QUARTERS_PER_BEAT[meter] or 1
  local spans = type(result.tempi) == "table" and result.tempi or {}
  local bpm = result.tempo_bpm
  for _, span in ipairs(spans) do
    if span.start_s <= downbeat + 1e-6 and downbeat < span.end_s then bpm = span.bpm end
  end
  local out = { { time = downbeat, bpm = bpm * scale, num = tonumber(num) or 0,
                  den = tonumber(den) or 0 } }
  if #spans > 1 then
    for _, span in ipairs(spans) do
      if span.start_s > downbeat + 1e-3 then
        out[#out + 1] = { time = span.start_s, bpm = span.bpm * scale, num = 0, den = 0 }
      end
    end
  end
  return out
end

local function recorded_tempo_markers()
  local _, text = reaper.GetProjExtState(0, M.SECTION, M.TEMPO_KEY)
  local out = {}
  for t, bpm in (text or ""):gmatch("([^ ;]+) ([^ ;]+)") do
    out[#out + 1] = { time = tonumber(t), bpm = tonumber(bpm) }
  end
  return out
end

-- Delete the tempo markers we wrote last time (told apart from the user's by their time and
-- tempo, kept in the project's ExtState), write `markers` and remember them. Call it inside an
-- undo block.
function M.write_tempo_markers(markers)
  local ours = recorded_tempo_markers()
  for idx = reaper.CountTempoTimeSigMarkers(0) - 1, 0, -1 do
    local _, time, _, _, bpm = reaper.GetTempoTimeSigMarker(0, idx)
    for _, m in ipairs(ours) do
      if m.time and m.bpm and math.abs(time - m.time) < 1e-3 and math.abs(bpm - m.bpm) < 1e-3 then
        reaper.DeleteTempoTimeSigMarker(0, idx)
        break
      end
    end
  end
  local record = {}
  for _, m in ipairs(markers) do
    reaper.SetTempoTimeSigMarker(0, -1, m.time, -1, -1, m.bpm, m.num, m.den, false)
    record[#record + 1] = M.json_number(m.time) .. " " .. M.json_number(m.bpm)
  end
  reaper.SetProjExtState(0, M.SECTION, M.TEMPO_KEY, table.concat(record, ";"))
end

------------------------------------------------------------------------------------------
-- Chord markers from the engine's chords
------------------------------------------------------------------------------------------

M.CHORD_TAG = "SV\u{266A} "          -- "SV♪ ": our chord markers (not "SV:", so the
                                     -- narrative's markers and the chords' stay apart)

-- The chord markers a narrate result asks for: { time = s, name = "SV♪ A:min" } where each
-- chord starts ("N.C." for no chord). nil, a message when the result has no chords.
function M.chord_markers(result)
  local out = {}
  for _, c in ipairs(type(result.chords) == "table" and result.chords or {}) do
    local name = c.chord == "N" and "N.C." or tostring(c.chord)
    out[#out + 1] = { time = c.start_s, name = M.CHORD_TAG .. name }
  end
  if #out == 0 then
    return nil, "The engine found no chords in the project's mix: the markers are left as they were."
  end
  return out
end

-- Delete the chord markers written before (named with CHORD_TAG), then add `markers`. Call
-- it inside an undo block.
function M.write_chord_markers(markers)
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = num_markers + num_regions - 1, 0, -1 do
    local _, isrgn, _, _, name = reaper.EnumProjectMarkers3(0, idx)
    if not isrgn and name and name:sub(1, #M.CHORD_TAG) == M.CHORD_TAG then
      reaper.DeleteProjectMarkerByIndex(0, idx)
    end
  end
  for _, m in ipairs(markers) do reaper.AddProjectMarker(0, false, m.time, 0, m.name, -1) end
end

-- Renders the project's mix, asks the engine to narrate it and gives the result to
-- `plan(result)`, which returns what to write (or nil and why, shown to the user); `write(what)`
-- then runs as one undo step named `title`. The temporary render is removed at the end.
function M.narrate_mix(title, stem, label, plan, write)
  local path = M.render_project(stem)
  if not path then return end
  M.run_steps(title, {
    { label = label,
      prepare = function() return M.NARRATE, { path = path, track = "Master" }, 600 end,
      apply = function(result)
        local what, why = plan(result)
        if not what then
          reaper.ShowMessageBox(why, "SonicVerse", 0)
          return
        end
        reaper.Undo_BeginBlock()
        write(what)
        reaper.UpdateTimeline()
        reaper.Undo_EndBlock(title, -1)
      end },
  }, function() os.remove(path) end)
end

return M
