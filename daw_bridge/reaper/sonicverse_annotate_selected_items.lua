-- @description SonicVerse: annotate selected items (key, vocals, tempo, caption)
-- @author SonicVerse
-- @version 0.5.1
-- @changelog
--   Labels and take markers name a singer's gender only when the engine is sure of it
--   (P(gender | vocals) >= 0.7), and say "vocals" otherwise, as the panel and the exports do
-- @provides
--   [nomain] sonicverse_common.lua
--   [main] sonicverse_annotate_regions.lua
--   [main] sonicverse_narrate_project.lua
--   [main] sonicverse_set_project_tempo.lua
--   [main] sonicverse_annotate_chords.lua
--   [main] sonicverse_annotate_form.lua
--   [main] sonicverse_configure.lua
-- @about
--   # SonicVerse for REAPER
--
--   Renders each selected media item to a temporary WAV through the project's render
--   settings (post-processing off, all restored afterwards), asks the running SonicVerse engine
--   (`sonicverse engine`) to annotate it through `sonicverse send`, and writes the result
--   back: a take marker "SV: <key> · <vocals> · <tempo>" at the start of the take and a
--   [SonicVerse] block (caption, loudness, tags) in the item notes. Running it again
--   replaces what it wrote; an unchanged item answers from the engine's cache.
--
--   REAPER stays responsive while the engine works: a small window shows progress and Esc
--   cancels. Also installs the actions "Script: sonicverse_annotate_regions.lua",
--   "Script: sonicverse_narrate_project.lua", "Script: sonicverse_set_project_tempo.lua",
--   "Script: sonicverse_annotate_chords.lua", "Script: sonicverse_annotate_form.lua" and
--   "Script: sonicverse_configure.lua" (run it first when REAPER does not find `sonicverse`
--   on its PATH). Needs REAPER 7.0 or later.

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

local function selected_items()
  local out = {}
  for i = 0, reaper.CountSelectedMediaItems(0) - 1 do out[#out + 1] = reaper.GetSelectedMediaItem(0, i) end
  return out
end

local function select_only(items)
  reaper.SelectAllMediaItems(0, false)
  for _, item in ipairs(items) do reaper.SetMediaItemSelected(item, true) end
end

-- Render `item` alone (the selection is put back as it was just before); returns the request
-- for it and the rendered file, or nil, an error reply ({ code = "skip" }: pass over it).
local function prepare_item(item, label)
  if not reaper.ValidatePtr2(0, item, "MediaItem*") then
    return nil, { ok = false, code = "skip", message = label .. ": deleted during the run" }
  end
  local take = reaper.GetActiveTake(item)
  if not take then return nil, { ok = false, code = "skip", message = label .. ": no active take" } end
  if reaper.TakeIsMIDI(take) then
    return nil, { ok = false, code = "skip", message = label .. ": a MIDI item, not analysed" }
  end
  local before = selected_items()
  select_only({ item })
  local guid = reaper.BR_GetMediaItemGUID and reaper.BR_GetMediaItemGUID(item)
    or select(2, reaper.GetSetMediaItemInfo_String(item, "GUID", "", false))
  local path, err = sv.render("sv_item_" .. guid:gsub("[^%w]", ""), 32, 4)
  select_only(before)
  reaper.UpdateArrange()
  if not path then return nil, { ok = false, code = "render", message = err } end
  local _, track_name = reaper.GetTrackName(reaper.GetMediaItem_Track(item))
  return sv.ANNOTATE, {
    path = path, start_s = 0, end_s = reaper.GetMediaItemInfo_Value(item, "D_LENGTH"),
    track = track_name, name = reaper.GetTakeName(take),
  }, nil, path
end

local function apply_item(item, ann)
  if not reaper.ValidatePtr2(0, item, "MediaItem*") then return end   -- deleted meanwhile
  local take = reaper.GetActiveTake(item)
  if not take then return end
  reaper.Undo_BeginBlock()
  sv.clear_take_markers(take)
  local offset = reaper.GetMediaItemTakeInfo_Value(take, "D_STARTOFFS")
  reaper.SetTakeMarker(take, -1, sv.TAG .. " " .. sv.summary(ann), offset)
  local _, notes = reaper.GetSetMediaItemInfo_String(item, "P_NOTES", "", false)
  reaper.GetSetMediaItemInfo_String(item, "P_NOTES", sv.replace_block(notes, item_notes(ann)), true)
  reaper.UpdateArrange()
  reaper.Undo_EndBlock("SonicVerse: annotate item", -1)
end

local function main()
  local items = selected_items()
  if #items == 0 then
    reaper.ShowMessageBox("Select one or more media items first.", "SonicVerse", 0)
    return
  end
  local steps = {}
  for n, item in ipairs(items) do
    local take = reaper.GetActiveTake(item)
    local label = take and reaper.GetTakeName(take) or ("item " .. n)
    local step = { label = label, apply = function(ann) apply_item(item, ann) end }
    step.prepare = function()
      local address, args, timeout_s, path = prepare_item(item, label)
      if path then step.cleanup = function() os.remove(path) end end
      return address, args, timeout_s
    end
    steps[#steps + 1] = step
  end
  sv.run_steps("SonicVerse: annotate selected items", steps)
end

main()
