-- @noindex
-- @description SonicVerse: configure (installed by "SonicVerse: annotate selected items")
-- @about
--   Sets where `sonicverse` is (its full path when REAPER's PATH lacks it, as when REAPER is
--   started from the macOS Finder), the engine's host, port and token, then pings the engine.

local script_dir = ({ reaper.get_action_context() })[2]:match("^(.*[/\\])")
local sv = dofile(script_dir .. "sonicverse_common.lua")

if sv.configure() then
  sv.run_steps("SonicVerse: configure", {
    { label = "ping", prepare = function() return sv.PING, {}, 5 end,
      apply = function(result)
        reaper.ShowMessageBox("The engine answers: " .. tostring(result.backend or "ok"),
                              "SonicVerse", 0)
      end },
  })
end
