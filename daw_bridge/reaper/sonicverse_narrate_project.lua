-- @noindex
-- @description SonicVerse: narrate project (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV and asks the engine for a
--   timestamped narrative over the project's regions (or 10 s pieces when it has none).
--   Writes the narrative into the project notes ([SonicVerse] block) and one project marker
--   "SV: ..." at each section. Running it again replaces both.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function spans(length)
  local out = {}
  local _, num_markers, num_regions = reaper.CountProjectMarkers(0)
  for idx = 0, num_markers + num_regions - 1 do
    local _, isrgn, pos, rgnend, name = reaper.EnumProjectMarkers(idx)
    if isrgn and pos < length then
      local stop = math.min(rgnend, length)
      if stop > pos then out[#out + 1] = { pos, stop, sv.tag_name(name, nil) } end
    end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

local function apply(result)
  local lines = { result.narrative.text, "" }
  for _, r in ipairs(result.regions) do
    local label = (r.name ~= nil and r.name ~= "") and (r.name .. ": ") or ""
    lines[#lines + 1] = string.format("%d:%02d  %s%s", math.floor(r.start_s / 60),
                                      math.floor(r.start_s % 60), label, r.caption or "")
  end
  reaper.Undo_BeginBlock()
  reaper.GetSetProjectNotes(0, true,
    sv.replace_block(reaper.GetSetProjectNotes(0, false, ""), table.concat(lines, "\n")))
  sv.clear_project_markers()
  for _, section in ipairs(result.narrative.sections) do
    local text = section.text:gsub("%s+", " ")
    if #text > 80 then text = text:sub(1, 77) .. "..." end
    reaper.AddProjectMarker(0, false, section.start_s, 0, sv.TAG .. " " .. text, -1)
  end
  reaper.UpdateTimeline()
  reaper.Undo_EndBlock("SonicVerse: narrate project", -1)
end

local function main()
  local path, length = sv.render_project("sv_project")
  if not path then return end
  local regions = spans(length)
  sv.run_steps("SonicVerse: narrate project", {
    { label = "narrative",
      prepare = function()
        return sv.NARRATE, { path = path, track = "Master",
                             regions = #regions > 0 and sv.json_spans(regions) or "" }, 600
      end,
      apply = apply },
  }, function() os.remove(path) end)
end

main()
