-- @noindex
-- @description SonicVerse: set project tempo from analysis (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV, asks the engine for its beat
--   grid and writes a tempo/time signature marker at the first downbeat (the analysed tempo
--   and meter), plus one at the start of each further stretch of steady tempo. One undo step.
--   Running it again replaces the markers it wrote and leaves the others alone. Tempo is in
--   quarter notes per minute (a 6/8 grid's dotted-quarter beat counts 1.5 quarters).
--   Items and markers whose timebase is beats follow the new tempo; set the project's
--   timebase to Time first to keep them where they are.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function main()
  local path = sv.render_project("sv_tempo")
  if not path then return end
  sv.run_steps("SonicVerse: set project tempo", {
    { label = "beat grid",
      prepare = function() return sv.NARRATE, { path = path, track = "Master" }, 600 end,
      apply = function(result)
        local markers, why = sv.tempo_markers(result)
        if not markers then
          reaper.ShowMessageBox(why, "SonicVerse", 0)
          return
        end
        reaper.Undo_BeginBlock()
        sv.write_tempo_markers(markers)
        reaper.UpdateTimeline()
        reaper.Undo_EndBlock("SonicVerse: set project tempo", -1)
      end },
  }, function() os.remove(path) end)
end

main()
