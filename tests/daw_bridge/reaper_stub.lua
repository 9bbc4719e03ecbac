-- A stand-in for REAPER's ReaScript API, enough to run the SonicVerse scripts under lua5.4.
--
-- usage: lua5.4 reaper_stub.lua <scene.lua> <script.lua> [<script.lua> ...]
-- The scene file returns { items = {...}, regions = {...}, mix = path, length = s,
-- project_notes = s, ext = {command=..., port=...} }. Rendering (action 42230) cuts the
-- scene's audio with sox. After the scripts ran, the project state is printed one fact per
-- line ("ITEM\t...", "TAKEMARKER\t...", "REGION\t...", "MARKER\t...", "PROJNOTES\t...").

local scene = dofile(arg[1])
local current_script
local project = {
  info = { RENDER_SETTINGS = 0, RENDER_BOUNDSFLAG = 1, RENDER_STARTPOS = 0, RENDER_ENDPOS = 0,
           RENDER_ADDTOPROJ = 1, RENDER_TAILFLAG = 0 },
  info_str = { RENDER_FILE = "/nowhere", RENDER_PATTERN = "$project", RENDER_FORMAT = "user" },
  notes = scene.project_notes or "",
  markers = {},
}
local next_number = 1
for _, r in ipairs(scene.regions or {}) do
  project.markers[#project.markers + 1] = { isrgn = true, pos = r.pos, rgnend = r.rgnend,
                                            name = r.name, number = next_number, color = 0 }
  next_number = next_number + 1
end
for i, it in ipairs(scene.items or {}) do
  it.selected = it.selected ~= false
  it.guid = string.format("{0000000%d-AAAA-BBBB-CCCC-DDDDDDDDDDDD}", i)
  it.take = { name = it.name, markers = {}, startoffs = it.startoffs or 0 }
  it.notes = it.notes or ""
end

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, "command failed: " .. cmd)
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

reaper = {}

function reaper.get_action_context() return true, current_script, 0, 0, 0, 0, 0 end
function reaper.GetOS() return "Linux" end
function reaper.GetExtState(_, key) return (scene.ext or {})[key] or "" end
function reaper.SetExtState() end
function reaper.GetUserInputs() return false, "" end
function reaper.ShowMessageBox(msg) print("MSG\t" .. msg:gsub("\n", " ")) return 1 end
function reaper.Undo_BeginBlock() end
function reaper.Undo_EndBlock() end
function reaper.PreventUIRefresh() end
function reaper.UpdateArrange() end
function reaper.UpdateTimeline() end
function reaper.RecursiveCreateDirectory(dir) sh("mkdir -p " .. q(dir)) return 1 end
function reaper.file_exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

function reaper.ExecProcess(cmd, _timeout_ms)
  local h = io.popen(cmd .. " 2>/dev/null; echo \"__EXIT:$?\"")
  local out = h:read("a")
  h:close()
  local body, code = out:match("^(.*)__EXIT:(%d+)%s*$")
  return code .. "\n" .. body
end

function reaper.GetSetProjectInfo(_, key, value, set)
  if set then project.info[key] = value end
  return project.info[key]
end

function reaper.GetSetProjectInfo_String(_, key, value, set)
  if set then project.info_str[key] = value end
  return true, project.info_str[key]
end

function reaper.Main_OnCommand(cmd)
  assert(cmd == 42230, "unexpected action " .. tostring(cmd))
  assert(project.info.RENDER_ADDTOPROJ == 0, "render would add files to the project")
  local out = project.info_str.RENDER_FILE .. "/" .. project.info_str.RENDER_PATTERN .. ".wav"
  if project.info.RENDER_SETTINGS == 32 then
    assert(project.info.RENDER_BOUNDSFLAG == 4)
    local n = 0
    for _, it in ipairs(scene.items) do
      if it.selected then n = n + 1; sh("cp " .. q(it.source) .. " " .. q(out)) end
    end
    assert(n == 1, "render of selected items expects one selected item, got " .. n)
  else
    assert(project.info.RENDER_SETTINGS == 0 and project.info.RENDER_BOUNDSFLAG == 0)
    local a, b = project.info.RENDER_STARTPOS, project.info.RENDER_ENDPOS
    sh(string.format("sox %s %s trim %.6f =%.6f", q(scene.mix), q(out), a, b))
  end
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
function reaper.SetMediaItemSelected(item, sel) item.selected = sel end
function reaper.GetActiveTake(item) return item.take end
function reaper.GetMediaItem_Track(item) return item.track end
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
  local mk = project.markers[idx + 1]
  if not mk then return 0 end
  return idx + 1, mk.isrgn, mk.pos, mk.rgnend, mk.name, mk.number, mk.color
end
function reaper.EnumProjectMarkers(idx)
  local r, isrgn, pos, rgnend, name, number = reaper.EnumProjectMarkers3(0, idx)
  return r, isrgn, pos, rgnend, name, number
end
function reaper.SetProjectMarker3(_, number, isrgn, pos, rgnend, name, color)
  for _, mk in ipairs(project.markers) do
    if mk.number == number and mk.isrgn == isrgn then
      mk.pos, mk.rgnend, mk.name, mk.color = pos, rgnend, name, color
      return true
    end
  end
  return false
end
function reaper.AddProjectMarker(_, isrgn, pos, rgnend, name)
  project.markers[#project.markers + 1] = { isrgn = isrgn, pos = pos, rgnend = rgnend,
                                            name = name, number = next_number, color = 0 }
  next_number = next_number + 1
  return next_number - 1
end
function reaper.DeleteProjectMarker(_, number, isrgn)
  for i, mk in ipairs(project.markers) do
    if mk.number == number and mk.isrgn == isrgn then table.remove(project.markers, i) return true end
  end
  return false
end

for i = 2, #arg do
  current_script = arg[i]
  dofile(current_script)
end

local function esc(s) return (tostring(s):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub("\t", "\\t")) end
for _, it in ipairs(scene.items or {}) do
  print(string.format("ITEM\t%s\t%s\t%s", it.name, tostring(it.selected), esc(it.notes)))
  for _, m in ipairs(it.take.markers) do
    print(string.format("TAKEMARKER\t%s\t%.3f\t%s", it.name, m.pos, esc(m.name)))
  end
end
for _, mk in ipairs(project.markers) do
  print(string.format("%s\t%.3f\t%.3f\t%s", mk.isrgn and "REGION" or "MARKER", mk.pos,
                      mk.rgnend, esc(mk.name)))
end
print("PROJNOTES\t" .. esc(project.notes))
local info = {}
for k, v in pairs(project.info) do info[#info + 1] = string.format("INFO\t%s\t%s", k, tostring(v)) end
for k, v in pairs(project.info_str) do info[#info + 1] = string.format("INFO\t%s\t%s", k, v) end
table.sort(info)
for _, line in ipairs(info) do print(line) end
