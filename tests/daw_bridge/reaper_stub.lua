-- A stand-in for REAPER's ReaScript API, enough to run the SonicVerse scripts under lua5.4.
--
-- usage: lua5.4 reaper_stub.lua <scene.lua> <script.lua> [<script.lua> ...]
-- The scene file returns { items = {...}, regions = {...}, markers = {...}, mix = path,
-- length = s, project_notes = s, ext = {command=..., port=...}, render = {KEY=value},
-- cancel_at_tick = n }. Rendering (action 42230) cuts the scene's audio with sox. After the
-- scripts ran (and the reaper.defer queue drained), the project state is printed one fact per
-- line ("ITEM\t...", "TAKEMARKER\t...", "REGION\t...", "MARKER\t...", "PROJNOTES\t...").
--
-- Modelled on the real API where the scripts could go wrong: ExecProcess runs the program
-- without a shell (words split at spaces, double quotes group, nothing else; -1/-2 do not wait);
-- markers and regions are numbered separately and enumerated by position; SetProjectMarker3
-- ignores an empty name (SetProjectMarker4 flags&1 clears it); RENDER_NORMALIZE,
-- RENDER_FORMAT2 and RENDER_FORMAT are honoured by the render and RENDER_TARGETS names its
-- output; only the 7-byte WAV config ("evaw" bits 0 1) is read as WAV. A render of a selected
-- item covers only the item's window of its source (D_STARTOFFS, D_LENGTH) at RENDER_SRATE and
-- RENDER_CHANNELS; an existing render target is not overwritten (REAPER would ask); the
-- RENDER_* keys the stub does not model are refused; ExecProcess fails (nil) for a program
-- that does not exist; a deleted item fails ValidatePtr2 and any other use of it raises.
-- Scene hooks: select_at_tick = { tick = n, names = {...} } (the user changes the selection
-- during the run), delete_at_tick = { tick = n, name = ... }, app_version = "6.83",
-- tempo_markers = { { time = s, bpm = n, num = 4, den = 4 } } (the user's), proj_ext = { key = v }
-- (ExtState "SonicVerse" saved in the project). Tempo markers print as "TEMPO\t<s>\t<bpm>\t<n>/<d>";
-- each outermost Undo_EndBlock as "UNDO\t<name>", an edit outside any undo block as "UNDOLESS".

local scene = dofile(arg[1])
if scene.locale then   -- REAPER runs its scripts in the user's locale
  assert(os.setlocale(scene.locale, "numeric"), "locale " .. scene.locale .. " is not available")
end
local current_script
local project = {
  info = { RENDER_SETTINGS = 0, RENDER_BOUNDSFLAG = 1, RENDER_STARTPOS = 0, RENDER_ENDPOS = 0,
           RENDER_ADDTOPROJ = 1, RENDER_TAILFLAG = 0, RENDER_NORMALIZE = 0, RENDER_DITHER = 0,
           RENDER_SRATE = 44100, RENDER_CHANNELS = 2 },
  info_str = { RENDER_FILE = "/nowhere", RENDER_PATTERN = "$project",
               RENDER_FORMAT = "bDNwbSAAAAAAAAAA", RENDER_FORMAT2 = "" },
  notes = scene.project_notes or "",
  markers = {},
}
for k, v in pairs(scene.render or {}) do
  if type(v) == "number" then project.info[k] = v else project.info_str[k] = v end
end
local next_number = { [true] = 1, [false] = 1 }   -- markers and regions count separately
local function add_marker(isrgn, pos, rgnend, name, wantidx)
  local number = (wantidx and wantidx >= 0) and wantidx or next_number[isrgn]
  next_number[isrgn] = math.max(next_number[isrgn], number + 1)
  project.markers[#project.markers + 1] = { isrgn = isrgn, pos = pos, rgnend = rgnend,
                                            name = name or "", number = number, color = 0 }
  return number
end
-- a scene may give `number`: REAPER does not keep the displayed numbers unique (renumbering,
-- imported or pasted markers, a wantidx already taken)
for _, r in ipairs(scene.regions or {}) do add_marker(true, r.pos, r.rgnend, r.name, r.number) end
for _, m in ipairs(scene.markers or {}) do add_marker(false, m.pos, 0, m.name, m.number) end
-- tempo/time signature markers, kept in time order as REAPER does (indices shift on insert)
project.tempo = {}
local function sort_tempo()
  table.sort(project.tempo, function(a, b) return a.time < b.time end)
end
for _, t in ipairs(scene.tempo_markers or {}) do
  project.tempo[#project.tempo + 1] = { time = t.time, bpm = t.bpm, num = t.num or 0,
                                        den = t.den or 0 }
end
sort_tempo()
project.extstate = {}
for k, v in pairs(scene.proj_ext or {}) do project.extstate["SonicVerse/" .. k] = v end
local function by_position()
  local sorted = {}
  for i, mk in ipairs(project.markers) do sorted[i] = mk end
  table.sort(sorted, function(a, b)
    if a.pos ~= b.pos then return a.pos < b.pos end
    if a.isrgn ~= b.isrgn then return not a.isrgn end
    return a.number < b.number
  end)
  return sorted
end
for i, it in ipairs(scene.items or {}) do
  it.selected = it.selected ~= false
  it.guid = string.format("{0000000%d-AAAA-BBBB-CCCC-DDDDDDDDDDDD}", i)
  if not it.notake then
    it.take = { name = it.name, markers = {}, startoffs = it.startoffs or 0, midi = it.midi }
  end
  it.notes = it.notes or ""
end

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "command failed: " .. cmd)
end

-- a number for sox's command line, whatever the scene's locale
local function num(x) return (string.format("%.6f", x):gsub(",", ".")) end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

reaper = {}

function reaper.get_action_context() return true, current_script, 0, 0, 0, 0, 0 end
function reaper.GetOS() return "Linux" end
function reaper.GetAppVersion() return scene.app_version or "7.27/linux-x86_64" end
function reaper.ValidatePtr2(_, item, kind)
  assert(kind == "MediaItem*", kind)
  return type(item) == "table" and not item.deleted
end
local function alive(item)
  assert(not item.deleted, "a deleted item was used (REAPER would crash)")
  return item
end
function reaper.GetExtState(_, key) return (scene.ext or {})[key] or "" end
function reaper.SetExtState() end
function reaper.GetUserInputs() return false, "" end
function reaper.ShowMessageBox(msg) print("MSG\t" .. msg:gsub("\n", " ")) return 1 end
local undo_depth = 0
function reaper.Undo_BeginBlock() undo_depth = undo_depth + 1 end
function reaper.Undo_EndBlock(name)
  assert(undo_depth > 0, "Undo_EndBlock without Undo_BeginBlock")
  undo_depth = undo_depth - 1
  if undo_depth == 0 then print("UNDO\t" .. name) end
end
local function edited(what)   -- an edit outside an undo block is not one undo step
  if undo_depth == 0 then print("UNDOLESS\t" .. what) end
end
function reaper.PreventUIRefresh() end
function reaper.UpdateArrange() end
function reaper.UpdateTimeline() end
function reaper.RecursiveCreateDirectory(dir) sh("mkdir -p " .. q(dir)) return 1 end
function reaper.file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

-- REAPER's own split of a command line: spaces separate words, double quotes group them;
-- single quotes and backslashes are ordinary characters (there is no shell).
local function split_cmdline(cmd)
  local words, word, quoted, any = {}, {}, false, false
  for ch in cmd:gmatch(".") do
    if ch == '"' then quoted = not quoted; any = true
    elseif ch == " " and not quoted then
      if any then words[#words + 1] = table.concat(word) end
      word, any = {}, false
    else word[#word + 1] = ch; any = true end
  end
  if any then words[#words + 1] = table.concat(word) end
  return words
end

local exec_log = {}
function reaper.ExecProcess(cmd, timeout_ms)
  local argv = {}
  for i, w in ipairs(split_cmdline(cmd)) do argv[i] = q(w) end
  exec_log[#exec_log + 1] = cmd
  local program = split_cmdline(cmd)[1] or ""
  local found = program:find("/") and os.execute("test -x " .. q(program))
    or (not program:find("/") and os.execute("command -v " .. q(program) .. " >/dev/null 2>&1"))
  if not found then return nil end   -- REAPER could not start it
  local line = table.concat(argv, " ")
  if timeout_ms < 0 then
    os.execute(line .. " >/dev/null 2>&1 </dev/null &")
    return ""
  end
  local h = io.popen(line .. " 2>/dev/null; echo \"__EXIT:$?\"")
  local out = h:read("a")
  h:close()
  local body, code = out:match("^(.*)__EXIT:(%d+)%s*$")
  return code .. "\n" .. body
end

local deferred = {}
function reaper.defer(fn) deferred[#deferred + 1] = fn end
function reaper.atexit() end
function reaper.time_precise()
  local h = io.popen("date +%s.%N")
  local t = tonumber(h:read("a"))
  h:close()
  return t
end

local ticks = 0
gfx = { w = 420, h = 70, x = 0, y = 0 }
function gfx.init() end
function gfx.quit() end
function gfx.set() end
function gfx.rect() end
function gfx.drawstr() end
function gfx.update() end
function gfx.getchar()
  ticks = ticks + 1
  local sel = scene.select_at_tick
  if sel and ticks == sel.tick then
    for _, it in ipairs(scene.items) do
      it.selected = false
      for _, name in ipairs(sel.names) do if it.name == name then it.selected = true end end
    end
  end
  local del = scene.delete_at_tick
  if del and ticks == del.tick then
    for _, it in ipairs(scene.items) do
      if it.name == del.name then it.deleted = true; it.selected = false end
    end
  end
  if scene.cancel_at_tick and ticks >= scene.cancel_at_tick then return 27 end
  return 0
end

local function b64decode(data)
  local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
  data = data:gsub("[^" .. alphabet .. "=]", "")
  return (data:gsub(".", function(x)
    if x == "=" then return "" end
    local r, f = "", (alphabet:find(x, 1, true) - 1)
    for i = 6, 1, -1 do r = r .. (f % 2 ^ i - f % 2 ^ (i - 1) > 0 and "1" or "0") end
    return r
  end):gsub("%d%d%d?%d?%d?%d?%d?%d?", function(x)
    if #x ~= 8 then return "" end
    local c = 0
    for i = 1, 8 do c = c + (x:sub(i, i) == "1" and 2 ^ (8 - i) or 0) end
    return string.char(c)
  end))
end

-- The extension REAPER renders to for a RENDER_FORMAT config (base64 of a sink config).
local function render_extension(cfg)
  local raw = b64decode(cfg)
  local fourcc = raw:sub(1, 4)
  if fourcc == "evaw" then
    assert(#raw == 7, "a WAV render config is 7 bytes, got " .. #raw .. " (" .. cfg .. ")")
    return ".wav"
  end
  return ({ ["l3pm"] = ".mp3", ["calf"] = ".flac", ["vggo"] = ".ogg" })[fourcc] or ".bin"
end

local function render_targets()
  local base = project.info_str.RENDER_FILE .. "/" .. project.info_str.RENDER_PATTERN
  local out = { base .. render_extension(project.info_str.RENDER_FORMAT) }
  if project.info_str.RENDER_FORMAT2 ~= "" then
    out[2] = base .. render_extension(project.info_str.RENDER_FORMAT2)
  end
  return out
end

function reaper.GetSetProjectInfo(_, key, value, set)
  assert(project.info[key] ~= nil, "GetSetProjectInfo: the stub does not model " .. key)
  if set then project.info[key] = value end
  return project.info[key]
end

function reaper.GetSetProjectInfo_String(_, key, value, set)
  if key == "RENDER_TARGETS" then
    assert(not set, "RENDER_TARGETS is read-only")
    return true, table.concat(render_targets(), ";")
  end
  assert(project.info_str[key] ~= nil, "GetSetProjectInfo_String: the stub does not model " .. key)
  if set then project.info_str[key] = value end
  return true, project.info_str[key]
end

function reaper.Main_OnCommand(cmd)
  assert(cmd == 42230, "unexpected action " .. tostring(cmd))
  assert(project.info.RENDER_ADDTOPROJ == 0, "render would add files to the project")
  local targets = render_targets()
  local out = targets[1]
  if reaper.file_exists(out) then   -- REAPER asks before overwriting; nothing is rendered here
    print("RENDER_REFUSED\t" .. out)
    return
  end
  local fmt = string.format("rate %d channels %d", project.info.RENDER_SRATE,
                            project.info.RENDER_CHANNELS)
  if project.info.RENDER_SETTINGS == 32 then
    assert(project.info.RENDER_BOUNDSFLAG == 4)
    local n = 0
    for _, it in ipairs(scene.items) do
      if it.selected then
        n = n + 1
        local offs, len = it.take.startoffs, it.length
        sh(string.format("sox %s %s trim %s %s pad 0 %s trim 0 %s %s", q(it.source), q(out),
                         num(offs), num(len), num(len), num(len), fmt))
      end
    end
    assert(n == 1, "render of selected items expects one selected item, got " .. n)
  else
    assert(project.info.RENDER_SETTINGS == 0 and project.info.RENDER_BOUNDSFLAG == 0)
    local a, b = project.info.RENDER_STARTPOS, project.info.RENDER_ENDPOS
    sh(string.format("sox %s %s trim %s =%s %s", q(scene.mix), q(out), num(a), num(b), fmt))
  end
  print(string.format("RENDERED\t%d\t%d", project.info.RENDER_SRATE, project.info.RENDER_CHANNELS))
  if project.info.RENDER_NORMALIZE ~= 0 then   -- post-processing: normalise (and so on)
    sh(string.format("sox %s %s.norm.wav norm -0.1 && mv %s.norm.wav %s", q(out), q(out), q(out),
                     q(out)))
  end
  if targets[2] then sh("cp " .. q(out) .. " " .. q(targets[2])) end
end

function reaper.CountSelectedMediaItems()
  local n = 0
  for _, it in ipairs(scene.items) do if it.selected then n = n + 1 end end
  return n
end

function reaper.GetSelectedMediaItem(_, idx)
  local n = -1
  for _, it in ipairs(scene.items) do
    if it.selected then n = n + 1; if n == idx then return it end end
  end
end

function reaper.SelectAllMediaItems(_, sel)
  for _, it in ipairs(scene.items) do it.selected = sel end
end
function reaper.SetMediaItemSelected(item, sel) alive(item).selected = sel end
function reaper.GetActiveTake(item) return alive(item).take end
function reaper.TakeIsMIDI(take) return take.midi == true end
function reaper.GetMediaItem_Track(item) return alive(item).track end
function reaper.GetTrackName(track) return true, track end
function reaper.GetTakeName(take) return take.name end
function reaper.GetMediaItemInfo_Value(item, key)
  assert(key == "D_LENGTH", key)
  return item.length
end
function reaper.GetMediaItemTakeInfo_Value(take, key)
  assert(key == "D_STARTOFFS", key)
  return take.startoffs
end
function reaper.GetSetMediaItemInfo_String(item, key, value, set)
  if key == "GUID" then return true, item.guid end
  assert(key == "P_NOTES", key)
  if set then item.notes = value end
  return true, item.notes
end
function reaper.GetNumTakeMarkers(take) return #take.markers end
function reaper.GetTakeMarker(take, idx)
  local m = take.markers[idx + 1]
  return m.pos, m.name, 0
end
function reaper.DeleteTakeMarker(take, idx) table.remove(take.markers, idx + 1) return true end
function reaper.SetTakeMarker(take, idx, name, pos)
  assert(idx == -1, "only adding markers is expected")
  take.markers[#take.markers + 1] = { name = name, pos = pos }
  return #take.markers - 1
end

function reaper.GetSet_LoopTimeRange() return 0, 0 end
function reaper.GetProjectLength() return scene.length end
function reaper.GetSetProjectNotes(_, set, notes)
  if set then project.notes = notes end
  return project.notes
end
function reaper.CountProjectMarkers()
  local m, r = 0, 0
  for _, mk in ipairs(project.markers) do if mk.isrgn then r = r + 1 else m = m + 1 end end
  return m + r, m, r
end
function reaper.EnumProjectMarkers3(_, idx)
  local mk = by_position()[idx + 1]
  if not mk then return 0 end
  return idx + 1, mk.isrgn, mk.pos, mk.rgnend, mk.name, mk.number, mk.color
end
function reaper.EnumProjectMarkers(idx)
  local r, isrgn, pos, rgnend, name, number = reaper.EnumProjectMarkers3(0, idx)
  return r, isrgn, pos, rgnend, name, number
end
function reaper.SetProjectMarker4(_, number, isrgn, pos, rgnend, name, color, flags)
  for _, mk in ipairs(project.markers) do
    if mk.number == number and mk.isrgn == isrgn then
      mk.pos, mk.rgnend, mk.color = pos, rgnend, color
      if name ~= "" then mk.name = name elseif flags & 1 == 1 then mk.name = "" end
      return true
    end
  end
  return false
end
-- By enumeration index (as EnumProjectMarkers3 counts): the one way to reach a marker whose
-- number another shares. flags&1 clears the name, as in SetProjectMarker4.
function reaper.SetProjectMarkerByIndex2(_, idx, isrgn, pos, rgnend, number, name, color, flags)
  local mk = by_position()[idx + 1]
  if not mk or mk.isrgn ~= isrgn then return false end
  mk.pos, mk.rgnend, mk.number, mk.color = pos, rgnend, number, color
  if name ~= "" then mk.name = name elseif flags & 1 == 1 then mk.name = "" end
  return true
end
function reaper.DeleteProjectMarkerByIndex(_, idx)
  local mk = by_position()[idx + 1]
  if not mk then return false end
  for i, m in ipairs(project.markers) do
    if m == mk then table.remove(project.markers, i) return true end
  end
end
function reaper.SetProjectMarker3(proj, number, isrgn, pos, rgnend, name, color)
  return reaper.SetProjectMarker4(proj, number, isrgn, pos, rgnend, name, color, 0)
end
function reaper.AddProjectMarker(_, isrgn, pos, rgnend, name, wantidx)
  return add_marker(isrgn, pos, rgnend, name, wantidx)
end
function reaper.AddProjectMarker2(_, isrgn, pos, rgnend, name, wantidx, color)
  edited("project marker")
  local number = add_marker(isrgn, pos, rgnend, name, wantidx)
  project.markers[#project.markers].color = color
  return number
end
function reaper.ColorToNative(r, g, b) return r | (g << 8) | (b << 16) end
function reaper.DeleteProjectMarker(_, number, isrgn)
  for i, mk in ipairs(project.markers) do
    if mk.number == number and mk.isrgn == isrgn then table.remove(project.markers, i) return true end
  end
  return false
end

function reaper.CountTempoTimeSigMarkers() return #project.tempo end
function reaper.GetTempoTimeSigMarker(_, idx)
  local t = project.tempo[idx + 1]
  if not t then return false, -1, -1, -1, 0, 0, 0, false end
  return true, t.time, 0, 0, t.bpm, t.num, t.den, false
end
-- ptidx -1 inserts; timepos must be given (measurepos/beatpos -1): the scripts place by time.
-- timesig 0/0 keeps the previous time signature.
function reaper.SetTempoTimeSigMarker(_, idx, timepos, measurepos, beatpos, bpm, num, den, linear)
  assert(timepos >= 0 and measurepos == -1 and beatpos == -1, "place tempo markers by time")
  assert(bpm > 0 and not linear, "bpm " .. tostring(bpm))
  edited("tempo marker")
  local t = { time = timepos, bpm = bpm, num = num, den = den }
  if idx == -1 then project.tempo[#project.tempo + 1] = t
  elseif project.tempo[idx + 1] then project.tempo[idx + 1] = t
  else return false end
  sort_tempo()
  return true
end
function reaper.AddTempoTimeSigMarker(_, timepos, bpm, num, den, linear)
  return reaper.SetTempoTimeSigMarker(0, -1, timepos, -1, -1, bpm, num, den, linear)
end
function reaper.DeleteTempoTimeSigMarker(_, idx)
  if not project.tempo[idx + 1] then return false end
  edited("tempo marker")
  table.remove(project.tempo, idx + 1)
  return true
end
-- Project ExtState is saved with the project: returns 1, value (0, "" when unset).
function reaper.GetProjExtState(_, section, key)
  local v = project.extstate[section .. "/" .. key]
  if v == nil then return 0, "" end
  return 1, v
end
function reaper.SetProjExtState(_, section, key, value)
  edited("project extstate")
  project.extstate[section .. "/" .. key] = value
  return 1
end

for i = 2, #arg do
  current_script = arg[i]
  dofile(current_script)
  while #deferred > 0 do   -- REAPER calls deferred functions about 30 times a second
    local batch = deferred
    deferred = {}
    for _, fn in ipairs(batch) do fn() end
    if #deferred > 0 then os.execute("sleep 0.03") end
  end
end

local function esc(s) return (tostring(s):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub("\t", "\\t")) end
for _, it in ipairs(scene.items or {}) do
  print(string.format("ITEM\t%s\t%s\t%s", it.name, tostring(it.selected), esc(it.notes)))
  for _, m in ipairs(it.take and it.take.markers or {}) do
    print(string.format("TAKEMARKER\t%s\t%.3f\t%s", it.name, m.pos, esc(m.name)))
  end
end
for _, cmd in ipairs(exec_log) do print("EXEC\t" .. cmd) end
for _, mk in ipairs(by_position()) do
  print(string.format("%s\t%.3f\t%.3f\t%s", mk.isrgn and "REGION" or "MARKER", mk.pos,
                      mk.rgnend, esc(mk.name)))
end
print("PROJNOTES\t" .. esc(project.notes))
for _, t in ipairs(project.tempo) do
  print(string.format("TEMPO\t%.3f\t%.2f\t%d/%d", t.time, t.bpm, t.num, t.den))
end
local info = {}
for k, v in pairs(project.info) do info[#info + 1] = string.format("INFO\t%s\t%s", k, tostring(v)) end
for k, v in pairs(project.info_str) do info[#info + 1] = string.format("INFO\t%s\t%s", k, v) end
table.sort(info)
for _, line in ipairs(info) do print(line) end
