-- @noindex
-- @description SonicVerse: annotate regions (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the master mix over the project's regions (those overlapping the time
--   selection, when there is one) to one temporary WAV, asks the engine to annotate each
--   region and appends "[SV <key> · <vocals> · <tempo>]" to each region's name. Running it
--   again replaces that suffix; unchanged regions answer from the engine's cache.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function project_regions()
  local sel_start, sel_end = reaper.GetSet_LoopTimeRange(false, false, 0, 0, false)
  local has_selection = sel_end > sel_start
  local regions = {}
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = 0, num_markers + num_regions - 1 do
    local _, isrgn, pos, rgnend, name, number, color = reaper.EnumProjectMarkers3(0, idx)
    if isrgn and rgnend > pos and (not has_selection or (pos < sel_end and rgnend > sel_start)) then
      regions[#regions + 1] = { isrgn = true, pos = pos, rgnend = rgnend, name = name,
                                number = number, color = color }
    end
  end
  return regions
end

local function main()
  local regions = project_regions()
  if #regions == 0 then
    reaper.ShowMessageBox("The project has no regions (in the time selection).", "SonicVerse", 0)
    return
  end
  local t0, t1 = math.huge, -math.huge
  for _, r in ipairs(regions) do t0 = math.min(t0, r.pos); t1 = math.max(t1, r.rgnend) end
  local path, err = sv.render("sv_regions", 0, 0, t0, t1)
  if not path then sv.fail({ code = "render", message = err }); return end
  local steps = {}
  for _, r in ipairs(regions) do
    local base = sv.tag_name(r.name, nil)
    steps[#steps + 1] = {
      label = base,
      prepare = function()
        return sv.ANNOTATE, { path = path, start_s = r.pos - t0, end_s = r.rgnend - t0,
                              track = "Master", name = base }
      end,
      apply = function(ann)
        local idx = sv.find_marker(r)
        if not idx then return end   -- deleted or edited during the run: left as it is
        reaper.Undo_BeginBlock()
        sv.rename_marker(idx, true, r.pos, r.rgnend, r.number, sv.tag_name(base, sv.summary(ann)),
                         r.color)
        reaper.UpdateTimeline()
        reaper.Undo_EndBlock("SonicVerse: annotate region", -1)
      end,
    }
  end
  sv.run_steps("SonicVerse: annotate regions", steps, function() os.remove(path) end)
end

main()
