-- SonicVerse for Ardour (7 or later): shared code of the SonicVerse Ardour scripts (not an action itself).
--
-- Ardour's Lua has no UDP socket, so the scripts start `sonicverse send <address> --args-file
-- <json> --output <reply>` detached through os.forkexec (no shell, so nothing to quote on any
-- OS; names travel in the JSON file) and poll for the reply file while a progress dialog keeps
-- Ardour's GUI running and offers Cancel. Audio travels by reference: a region's own source file plus its
-- bounds in that file, so nothing is rendered; Ardour keeps one file a channel, so a stereo
-- region sends its left channel's file as `path` and the others as `channels`. The engine's address comes from
-- $SONICVERSE_HOST / $SONICVERSE_PORT / $SONICVERSE_TOKEN (read by `sonicverse send`), the
-- command from $SONICVERSE_COMMAND (default "sonicverse").

local M = {}

M.TAG = "SV:"                       -- prefix of the range markers we own
M.TEMPO_TAG = "SV: tempo"           -- the range marker over the bar the tempo starts
M.CHORD_TAG = "SV\u{266A} "          -- "SV♪ ": the range markers over the chords
M.FORM_TAG = "SV: form"             -- the range markers over the sections of the form
M.ANNOTATE = "/sonicverse/region/annotate"
M.NARRATE = "/sonicverse/track/narrate"

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

-- JSON text of a flat table of strings, numbers and lists of strings.
local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(ch)
    return string.format("\\u%04x", ch:byte())
  end) .. '"'
end

function M.json_object(t)
  local names, parts = {}, {}
  for k in pairs(t) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do
    local v = t[k]
    local text
    if type(v) == "number" then text = M.json_number(v)
    elseif type(v) == "table" then
      local items = {}
      for i, item in ipairs(v) do items[i] = json_string(item) end
      text = "[" .. table.concat(items, ",") .. "]"
    else text = json_string(v) end
    parts[#parts + 1] = json_string(k) .. ":" .. text
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local WINDOWS = package.config:sub(1, 1) == "\\"
local SEP = WINDOWS and "\\" or "/"

-- Where the request, reply and progress files go: $TMPDIR, %TEMP% or %TMP% (os.tmpname() on
-- Windows names a file in the root of the current drive, which users may not write).
function M.temp_dir()
  local dir = os.getenv("TMPDIR") or os.getenv("TEMP") or os.getenv("TMP")
  if not dir or dir == "" then
    dir = WINDOWS and ((os.getenv("LOCALAPPDATA") or "C:") .. "\\Temp") or "/tmp"
  end
  return (dir:gsub("[/\\]+$", ""))
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The full path of `sonicverse` ($SONICVERSE_COMMAND, or found on $PATH): os.forkexec runs a
-- program by its full path, without a shell. Returns the path or nil, a message.
function M.command()
  local name = os.getenv("SONICVERSE_COMMAND") or "sonicverse"
  if name:find("[/\\]") then
    if exists(name) then return name end
    return nil, "SONICVERSE_COMMAND=" .. name .. " does not exist"
  end
  local exts = WINDOWS and { ".exe", ".cmd", ".bat", "" } or { "" }
  for dir in (os.getenv("PATH") or ""):gmatch(WINDOWS and "[^;]+" or "[^:]+") do
    for _, ext in ipairs(exts) do
      local path = dir:gsub("[/\\]+$", "") .. SEP .. name .. ext
      if exists(path) then return path end
    end
  end
  return nil, name .. " is not on Ardour's PATH: start Ardour with "
    .. "SONICVERSE_COMMAND=/full/path/to/sonicverse"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text
end

local job_counter = 0

-- Start `sonicverse send address --args-file ... --output ...` detached (os.forkexec: no
-- shell, no wait, so nothing needs quoting on any OS). Returns a job for M.wait, or nil, an
-- error reply.
function M.start(address, args, timeout_s)
  if not os.forkexec then
    return nil, { ok = false, code = "exec", message = "os.forkexec is missing (Ardour 7's "
                  .. "editor provides it to action scripts)" }
  end
  local command, err = M.command()
  if not command then return nil, { ok = false, code = "exec", message = err } end
  job_counter = job_counter + 1
  local base = string.format("%s%ssonicverse_%d_%d_%d", M.temp_dir(), SEP, os.time(),
                             math.random(1, 1000000000), job_counter)
  local job = { args = base .. "_args.json", reply = base .. "_reply.json",
                progress = base .. "_progress.json", cancel = base .. "_cancel",
                timeout_s = timeout_s or 120, address = address }
  local f, ferr = io.open(job.args, "wb")
  if not f then return nil, { ok = false, code = "exec", message = tostring(ferr) } end
  f:write(M.json_object(args))
  f:close()
  os.forkexec(command, "send", address, "--args-file", job.args, "--output", job.reply,
              "--progress-file", job.progress, "--cancel-file", job.cancel,
              "--timeout", string.format("%d", math.ceil(job.timeout_s)))
  job.started = os.time()
  return job
end

-- Remove the job's files (request, reply, progress, cancel).
function M.cleanup(job)
  for _, p in ipairs({ job.args, job.reply, job.progress, job.cancel, job.reply .. ".part" }) do
    os.remove(p)
  end
end

-- One look at a running job: its decoded reply once it finished, else nil (job.stage, job.done
-- and job.total follow the engine's progress). After timeout_s + 15 s without a reply: an
-- 'exec' error.
function M.poll(job)
  local text = read_file(job.reply)
  if text then
    M.cleanup(job)
    local okj, reply = pcall(M.json_decode, text:match("({.*})") or "")
    if not okj then return { ok = false, code = "exec", message = tostring(reply) } end
    return reply
  end
  local progress = read_file(job.progress)
  if progress then
    local okj, p = pcall(M.json_decode, progress:match("({.*})") or "")
    if okj and type(p) == "table" then job.stage, job.done, job.total = p.progress, p.done, p.total end
  end
  if os.time() - job.started > job.timeout_s + 15 then
    M.cleanup(job)
    return { ok = false, code = "exec", message = "no reply from sonicverse send: is the engine "
             .. "running (sonicverse engine)?" }
  end
  return nil
end

-- Ask a running job to stop; its reply becomes a 'cancelled' error.
function M.cancel(job)
  local f = io.open(job.cancel, "wb")
  if f then f:close() end
end

-- Wait for `job` without freezing Ardour: every 50 ms `tick(job)` runs (the progress dialog:
-- drawing it lets Ardour's GUI handle its events); when it returns true the job is cancelled.
function M.wait(job, tick)
  local cancelled = false
  while true do
    local reply = M.poll(job)
    if reply then return reply end
    if tick and tick(job) and not cancelled then
      cancelled = true
      M.cancel(job)
    end
    ARDOUR.LuaAPI.usleep(50000)
  end
end

-- Run `sonicverse send` and wait for its reply (see M.start, M.wait).
function M.send(address, args, timeout_s, tick)
  local job, err = M.start(address, args, timeout_s)
  if not job then return err end
  return M.wait(job, tick)
end

-- A progress reporter for M.run: Ardour's progress dialog with a Cancel button (headless
-- ardour7-lua has no dialogs: nil).
function M.progress_dialog(title)
  if not LuaDialog or not LuaDialog.ProgressWindow then return nil end
  return LuaDialog.ProgressWindow(title, true)
end

-- The `tick` for M.wait while item `i` of `n` (`label`) runs: updates `dialog` and says whether
-- its Cancel button was pressed.
function M.ticker(dialog, i, n, label)
  if not dialog then return nil end
  return function(job)
    local stage = job.stage and string.format(" · %s %s/%s", tostring(job.stage),
                                              tostring(job.done), tostring(job.total)) or ""
    return dialog:progress((i - 1) / n, string.format("%d/%d %s%s", i, n, label, stage))
  end
end

-- Rename `region` as one undoable step.
function M.rename_region(region, name)
  Session:begin_reversible_command("SonicVerse: name region")
  region:to_stateful():clear_changes()
  region:set_name(name)
  if Session:add_stateful_diff_command(region:to_statefuldestructible()):empty() then
    Session:abort_reversible_command()
  else
    Session:commit_reversible_command(nil)
  end
end

-- Show `lines` (the errors of a run) once, at the end: a dialog, or the log when headless.
function M.report(title, lines)
  if #lines == 0 then return end
  local text = table.concat(lines, "\n")
  if LuaDialog and LuaDialog.Message then
    LuaDialog.Message(title, text, LuaDialog.MessageType.Warning, LuaDialog.ButtonType.Close):run()
  else
    print(title .. ": " .. text:gsub("\n", "\n  "))
  end
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
  if ann.silent == true then return "silence" end
  local bits = {}
  if M.has(ann.key) then bits[#bits + 1] = ann.key.key end
  if M.has(ann.vocals) then
    bits[#bits + 1] = M.vocals_words(ann.vocals)
  end
  if type(ann.tempo_bpm) == "number" then
    bits[#bits + 1] = string.format("%.0f BPM", ann.tempo_bpm)
  end
  return table.concat(bits, " · ")
end

-- Remove our " [SV ...]" suffix from a name, then add the new one.
function M.tag_name(name, text)
  local base = (name or ""):gsub("%s*%[SV [^%]]*%]$", "")
  if text == nil or text == "" then return base end
  return (base ~= "" and (base .. " ") or "") .. "[SV " .. text .. "]"
end

-- The source files of an audio region, one a channel (Ardour keeps a stereo region as two mono
-- files): a list of paths, or nil, a 'skip' error when a channel has no file behind it.
function M.channel_paths(ar)
  local paths = {}
  for i = 0, ar:n_channels() - 1 do
    local fs = ar:source(i):to_filesource()
    if fs:isnil() then return nil, { code = "skip", message = "no file behind the region" } end
    paths[#paths + 1] = fs:path()
  end
  if #paths == 0 then return nil, { code = "skip", message = "no file behind the region" } end
  return paths
end

-- Annotate `region` (an ARDOUR.Region of an audio track) from its source files, every channel's;
-- returns the annotation or nil, an error reply.
function M.annotate_region(region, track_name, from_s, to_s, tick)
  local ar = region:to_audioregion()
  if ar:isnil() then return nil, { code = "skip", message = "not an audio region" } end
  local paths, skip = M.channel_paths(ar)
  if not paths then return nil, skip end
  local rate = Session:nominal_sample_rate()
  local pos = region:position():samples() / rate
  local start_s = region:start():samples() / rate
  local len_s = region:length():samples() / rate
  from_s = math.max(from_s or pos, pos)
  to_s = math.min(to_s or (pos + len_s), pos + len_s)
  local args = {
    path = paths[1], start_s = start_s + (from_s - pos), end_s = start_s + (to_s - pos),
    track = track_name, name = M.tag_name(region:name(), nil),
  }
  if #paths > 1 then args.channels = { table.unpack(paths, 2) } end
  local reply = M.send(M.ANNOTATE, args, 120, tick)
  if not reply.ok then return nil, reply end
  return reply.result
end

-- True for a location this library wrote.
function M.ours(location)
  local name = location:name()
  return name:sub(1, #M.TAG) == M.TAG or name:sub(1, #M.CHORD_TAG) == M.CHORD_TAG
end

-- True for a chord range this library wrote.
function M.is_chord(location)
  return location:name():sub(1, #M.CHORD_TAG) == M.CHORD_TAG
end

-- Replace our "SV: ..." location starting in [from_s, to_s) by one over [from_s, to_s] saying
-- `text`. A range marker: Ardour's Lua cannot construct a plain marker (no Location
-- constructor is bound; Locations:add_range is).
function M.mark(from_s, to_s, text)
  local rate = Session:nominal_sample_rate()
  local doomed = {}
  for l in Session:locations():list():iter() do
    local at = l:start():samples() / rate
    if M.ours(l) and l:name():sub(1, #M.TEMPO_TAG) ~= M.TEMPO_TAG and not M.is_chord(l)
       and at >= from_s - 1e-3 and at < math.max(to_s, from_s + 1e-3) then
      doomed[#doomed + 1] = l
    end
  end
  for _, l in ipairs(doomed) do Session:locations():remove(l) end
  local loc = Session:locations():add_range(Temporal.timepos_t(math.floor(from_s * rate + 0.5)),
                                            Temporal.timepos_t(math.floor(to_s * rate + 0.5)))
  loc:set_name(M.TAG .. " " .. text)
end

-- The first downbeat of a narrate result's grid inside [from_s, to_s) of the file, the tempo
-- there and the meter: at_s, bpm, meter; or nil when the grid has none there.
function M.first_downbeat(result, from_s, to_s)
  if type(result.tempo_bpm) ~= "number" or not M.has(result.meter) then return nil end
  for _, b in ipairs(type(result.beats) == "table" and result.beats or {}) do
    if b.position == 1 and b.time_s >= from_s - 1e-6 and b.time_s < to_s then
      local bpm = result.tempo_bpm
      for _, span in ipairs(type(result.tempi) == "table" and result.tempi or {}) do
        if span.start_s <= b.time_s + 1e-6 and b.time_s < span.end_s then bpm = span.bpm end
      end
      return b.time_s, bpm, result.meter
    end
  end
  return nil
end

-- Set the session's tempo map so that bar 1 of `meter` ("4/4", "3/4", "2/4", "6/8") at `bpm`
-- beats a minute starts at `at_s` (session seconds). Ardour puts tempo changes on beats and
-- meters on bars, so the time before `at_s` becomes a lead-in of whole beats (the tempo at 0
-- set so that they end exactly at `at_s`; a short first bar holds the beats left over). Tempo
-- is in quarter notes (a 6/8 beat is a dotted quarter). `old_s`: where an earlier run put its
-- tempo; Ardour 7's Lua cannot remove a tempo, so that one is given the tempo around it.
-- Returns the lead-in tempo (quarters a minute).
-- The sections of a narrate result's form inside [from_s, to_s) of the file, clipped to it:
-- { start, stop, name } with names "Chorus 1 · A minor · 128 BPM" (the function, or
-- "Section <label>", numbered; the key of the region holding most of it; the tempo there).
function M.form_sections(result, from_s, to_s)
  local function most(list, a, b, value)
    local best, cover = nil, 0
    for _, x in ipairs(type(list) == "table" and list or {}) do
      local c = math.min(b, x.end_s) - math.max(a, x.start_s)
      local v = value(x)
      if c > cover and v ~= nil then best, cover = v, c end
    end
    return best
  end
  local count, out = {}, {}
  for _, s in ipairs(type(result.form) == "table" and result.form or {}) do
    local a, b = math.max(s.start_s, from_s), math.min(s.end_s, to_s)
    if b > a then
      local what = M.has(s["function"]) and (s["function"]:gsub("^%l", string.upper))
        or ("Section " .. s.label)
      count[what] = (count[what] or 0) + 1
      local bits = { what .. " " .. count[what] }
      local key = most(result.regions, a, b, function(r)
        return (type(r.key) == "table" and not r.silent) and r.key.key or nil
      end)
      if key then bits[#bits + 1] = key end
      local bpm = most(result.tempi, a, b, function(t) return t.bpm end)
      if bpm == nil and type(result.tempo_bpm) == "number" then bpm = result.tempo_bpm end
      if bpm == nil then  -- no grid: the regions' (track-level) tempo
        bpm = most(result.regions, a, b, function(r)
          return type(r.tempo_bpm) == "number" and r.tempo_bpm or nil
        end)
      end
      if bpm then bits[#bits + 1] = string.format("%.0f BPM", bpm) end
      out[#out + 1] = { start = a, stop = b, name = table.concat(bits, " · ") }
    end
  end
  return out
end

function M.set_tempo_map(at_s, bpm, meter, old_s)
  local rate = Session:nominal_sample_rate()
  local num, den = meter:match("^(%d+)/(%d+)$")
  num, den = tonumber(num), tonumber(den)
  local quarters = bpm * (den == 8 and 1.5 or 1)        -- quarter notes a minute
  local per_bar = num * 4 / den                          -- quarter notes a bar
  local lead = math.floor(at_s * quarters / 60 + 0.5)    -- whole quarters before the bar
  local function pos(s) return Temporal.timepos_t(math.floor(s * rate + 0.5)) end
  local tm = Temporal.TempoMap.write_copy()
  local lead_in = lead > 0 and lead * 60 / at_s or quarters
  tm:set_tempo(Temporal.Tempo(lead_in, lead_in, 4), pos(0))
  local pickup = lead % per_bar
  if pickup > 0 then                                     -- a short first bar
    tm:set_meter(Temporal.Meter(math.floor(pickup * den / 4), den), pos(0))
    if lead > pickup then
      tm:set_meter(Temporal.Meter(num, den), pos(pickup * 60 / lead_in))
    end
  else
    tm:set_meter(Temporal.Meter(num, den), pos(0))
  end
  if old_s and math.abs(old_s - at_s) > 1e-3 then
    local around = old_s < at_s and lead_in or quarters
    tm:set_tempo(Temporal.Tempo(around, around, 4), pos(old_s))
  end
  if lead > 0 then
    tm:set_tempo(Temporal.Tempo(quarters, quarters, 4), pos(at_s))
    tm:set_meter(Temporal.Meter(num, den), pos(at_s))
  end
  Session:begin_reversible_command("SonicVerse: set tempo")
  Temporal.TempoMap.update(tm)
  if not Session:abort_empty_reversible_command() then Session:commit_reversible_command(nil) end
  return lead_in
end

-- The chords of a narrate result inside [from_s, to_s) of the file, in session time (the file's
-- from_s sits at session time pos_s): { from = s, to = s, name = "SV♪ A:min" } ("N.C." for no
-- chord), clipped to the span.
function M.chord_ranges(result, from_s, to_s, pos_s)
  local out = {}
  for _, c in ipairs(type(result.chords) == "table" and result.chords or {}) do
    local a, b = math.max(c.start_s, from_s), math.min(c.end_s, to_s)
    if b > a + 1e-3 then
      local name = c.chord == "N" and "N.C." or tostring(c.chord)
      out[#out + 1] = { from = pos_s + a - from_s, to = pos_s + b - from_s,
                        name = M.CHORD_TAG .. name }
    end
  end
  return out
end

-- Remove every chord range written before, then add a range marker for each of `ranges`.
function M.write_chords(ranges)
  local rate = Session:nominal_sample_rate()
  local doomed = {}
  for l in Session:locations():list():iter() do
    if M.is_chord(l) then doomed[#doomed + 1] = l end
  end
  for _, l in ipairs(doomed) do Session:locations():remove(l) end
  for _, r in ipairs(ranges) do
    local loc = Session:locations():add_range(Temporal.timepos_t(math.floor(r.from * rate + 0.5)),
                                              Temporal.timepos_t(math.floor(r.to * rate + 0.5)))
    loc:set_name(r.name)
  end
end

-- The audio regions of the session: { region, track_name } for each, by track then position.
function M.all_regions()
  local out = {}
  for route in Session:get_routes():iter() do
    local track = route:to_track()
    if not track:isnil() and not track:to_audio_track():isnil() then
      for region in track:playlist():region_list():iter() do
        out[#out + 1] = { region = region, track = route:name() }
      end
    end
  end
  return out
end

-- The selected audio region (the session's first when none is selected, or headless) narrated
-- by the engine, for the actions that read the track's grid, form or chords. Reports what went
-- wrong (nothing on a cancel) and returns nil; else the region, the engine's result, the
-- session's rate and the region's position, source start and length in seconds.
function M.narrate_target(title)
  local target
  if Editor then
    for region in Editor:get_selection().regions:regionlist():iter() do
      if not region:to_audioregion():isnil() then target = target or region end
    end
  end
  local id = target and target:to_stateful():id():to_s()
  local track = ""
  for _, r in ipairs(M.all_regions()) do
    if id and r.region:to_stateful():id():to_s() == id then track = r.track end
    if not target then target, track = r.region, r.track end
  end
  if not target then return M.report(title, { "no audio region in the session" }) end
  local paths = M.channel_paths(target:to_audioregion())
  if not paths then return M.report(title, { target:name() .. ": no file behind the region" }) end

  local rate = Session:nominal_sample_rate()
  local dialog = M.progress_dialog(title)
  local args = { path = paths[1], track = track }
  if #paths > 1 then args.channels = { table.unpack(paths, 2) } end  -- a stereo region: both
  local reply = M.send(M.NARRATE, args, 600, M.ticker(dialog, 1, 1, target:name()))
  if dialog then dialog:done() end
  if not reply.ok then
    if reply.code == "cancelled" then return nil end
    return M.report(title, { string.format("%s: %s: %s", target:name(), tostring(reply.code),
                                           tostring(reply.message)) })
  end
  return {
    region = target,
    result = reply.result,
    rate = rate,
    pos = target:position():samples() / rate,
    start_s = target:start():samples() / rate,
    len_s = target:length():samples() / rate,
  }
end

return M
