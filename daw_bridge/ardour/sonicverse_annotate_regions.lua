ardour {
  ["type"] = "EditorAction",
  name = "SonicVerse: annotate regions",
  author = "SonicVerse",
  description = [[Asks the running SonicVerse engine (`sonicverse engine`) for the key, vocals
and tempo of each selected audio region (every audio region when nothing is selected, or when
run headless), appends "[SV <key> · <vocals> · <tempo>]" to its name and adds a range
marker "SV: ..." over it. Running it again replaces both. Ardour stays responsive (a progress
dialog offers Cancel); each rename is one step in Edit > Undo (Ardour 7's Lua cannot put
marker edits in the undo history). Needs sonicverse_lib.lua beside it.]],
}

function factory () return function ()
  local dir = ARDOUR.LuaAPI.build_filename(ARDOUR.user_config_directory(-1), "scripts")
  local lib_path = os.getenv("SONICVERSE_ARDOUR_LIB")
    or ARDOUR.LuaAPI.build_filename(dir, "sonicverse_lib.lua")
  local sv = dofile(lib_path)

  local targets = {}
  local selected = {}
  if Editor then
    for region in Editor:get_selection().regions:regionlist():iter() do
      selected[region:to_stateful():id():to_s()] = true
    end
  end
  for _, r in ipairs(sv.all_regions()) do
    if next(selected) == nil or selected[r.region:to_stateful():id():to_s()] then
      targets[#targets + 1] = r
    end
  end

  local rate = Session:nominal_sample_rate()
  local dialog = sv.progress_dialog("SonicVerse: annotate regions")
  local errors = {}
  for i, t in ipairs(targets) do
    local label = t.region:name()
    local ann, err = sv.annotate_region(t.region, t.track, nil, nil,
                                        sv.ticker(dialog, i, #targets, label))
    if ann then
      local text = sv.summary(ann)
      sv.rename_region(t.region, sv.tag_name(t.region:name(), text))
      local pos = t.region:position():samples() / rate
      sv.mark(pos, pos + t.region:length():samples() / rate, text)
    elseif err.code == "cancelled" then
      break
    elseif err.code ~= "skip" then
      errors[#errors + 1] = string.format("%s: %s: %s", label, tostring(err.code),
                                          tostring(err.message))
    end
  end
  if dialog then dialog:done() end
  sv.report("SonicVerse: annotate regions", errors)
end end
