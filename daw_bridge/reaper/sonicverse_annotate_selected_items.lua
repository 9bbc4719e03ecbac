-- @description SonicVerse: annotate selected items (key, vocals, tempo, caption)
-- @author SonicVerse
-- @version 0.1.0
-- @provides
--   [nomain] sonicverse_common.lua
--   [main] sonicverse_annotate_regions.lua
--   [main] sonicverse_narrate_project.lua
-- @link https://github.com/sonicverse/sonicverse-studio
-- @about
--   # SonicVerse for REAPER
--
--   Renders each selected media item to a temporary WAV through the project's render
--   settings (restored afterwards), asks the running SonicVerse engine
--   (`sonicverse engine`) to annotate it through `sonicverse send`, and writes the result
--   back: a take marker "SV: <key> · <vocals> · <tempo>" at the start of the take and a
--   [SonicVerse] block (caption, loudness, tags) in the item notes. Running it again
--   replaces what it wrote; an unchanged item answers from the engine's cache.
--
--   Also installs "SonicVerse: annotate regions" and "SonicVerse: narrate project".

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function item_notes(ann)
  local lines = { ann.caption or "" }
  if type(ann.loudness_lufs) == "number" then
    lines[#lines + 1] = string.format("Loudness: %.1f LUFS", ann.loudness_lufs)
  end
  for _, group in ipairs({ "instruments", "genres", "moods" }) do
    local labels = {}
    for _, tag in ipairs(type(ann[group]) == "table" and ann[group] or {}) do
      labels[#labels + 1] = tag.label
    end
    if #labels > 0 then lines[#lines + 1] = group .. ": " .. table.concat(labels, ", ") end
  end
  return table.concat(lines, "\n")
end

local function annotate_item(item)
  local take = reaper.GetActiveTake(item)
  if not take then return true end
  reaper.SelectAllMediaItems(0, false)
  reaper.SetMediaItemSelected(item, true)
  local guid = reaper.BR_GetMediaItemGUID and reaper.BR_GetMediaItemGUID(item)
    or select(2, reaper.GetSetMediaItemInfo_String(item, "GUID", "", false))
  local stem = "sv_item_" .. guid:gsub("[^%w]", "")
  local path, err = sv.render(stem, 32, 4)
  if not path then return false, { code = "render", message = err } end
  local length = reaper.GetMediaItemInfo_Value(item, "D_LENGTH")
  local _, track_name = reaper.GetTrackName(reaper.GetMediaItem_Track(item))
  local reply = sv.send(sv.ANNOTATE, {
    path = path, start_s = 0, end_s = length, track = track_name,
    name = reaper.GetTakeName(take),
  })
  if not reply.ok then return false, reply end
  local ann = reply.result
  sv.clear_take_markers(take)
  local offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
  reaper.SetTakeMarker(take, -1, sv.TAG .. " " .. sv.summary(ann), offset)
  local _, notes = reaper.GetSetMediaItemInfo_String(item, "P_NOTES", "", false)
  reaper.GetSetMediaItemInfo_String(item, "P_NOTES", sv.replace_block(notes, item_notes(ann)), true)
  return true
end

local function main()
  local count = reaper.CountSelectedMediaItems(0)
  if count == 0 then
    reaper.ShowMessageBox("Select one or more media items first.", "SonicVerse", 0)
    return
  end
  local items = {}
  for i = 0, count - 1 do items[#items + 1] = reaper.GetSelectedMediaItem(0, i) end
  reaper.Undo_BeginBlock()
  reaper.PreventUIRefresh(1)
  local failure
  for _, item in ipairs(items) do
    local ok, reply = annotate_item(item)
    if not ok then failure = reply; break end
  end
  reaper.SelectAllMediaItems(0, false)
  for _, item in ipairs(items) do reaper.SetMediaItemSelected(item, true) end
  reaper.PreventUIRefresh(-1)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock("SonicVerse: annotate selected items", -1)
  if failure then sv.fail(failure) end
end

main()
