-- @noindex
-- @description SonicVerse: annotate chords (installed by "SonicVerse: annotate selected items")
-- @about
--   Renders the whole project's master mix to a temporary WAV, asks the engine for its chords
--   (recognised on the beat grid, in Harte syntax: C:maj, A:min, G:7, N.C. for no chord) and
--   writes one project marker "SV♪ <chord>" where each chord starts. One undo step. Running it
--   again replaces the chord markers it wrote and leaves every other marker alone.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

local function main()
  local path = sv.render_project("sv_chords")
  if not path then return end
  sv.run_steps("SonicVerse: annotate chords", {
    { label = "chords",
      prepare = function() return sv.NARRATE, { path = path, track = "Master" }, 600 end,
      apply = function(result)
        local markers, why = sv.chord_markers(result)
        if not markers then
          reaper.ShowMessageBox(why, "SonicVerse", 0)
          return
        end
        reaper.Undo_BeginBlock()
        sv.write_chord_markers(markers)
        reaper.UpdateTimeline()
        reaper.Undo_EndBlock("SonicVerse: annotate chords", -1)
      end },
  }, function() os.remove(path) end)
end

main()
