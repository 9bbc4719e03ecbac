"""The track's form as arrangement locators (cue points) in Live.

What Live's API allows a remote script (Live Object Model, Live 11/12): ``Song.cue_points``
lists the locators, each with a ``time`` in beats (read only) and a ``name`` (writable);
``Song.set_or_delete_cue()`` toggles a locator at the current arrangement position and is the
only way to create or delete one; ``Song.current_song_time`` moves that position, and Live
applies the move on a later tick. So locators are written one step per tick: move, check the
position arrived, toggle, name. ``Song.begin_undo_step()`` / ``end_undo_step()`` (where Live
has them) make the whole run one undo step. The locators we write are named ``"SV: ..."``;
running again deletes those first and leaves the user's alone; a place that already has a
locator of the user's is skipped (the toggle would delete it).
"""

TAG = "SV: "
MAX_WAIT_TICKS = 20  # ticks to wait for Live to apply a move before giving up on a step
SAME_BEAT = 1e-3


def section_names(result):
    """``[(start_s, end_s, name)]`` for the sections of a narrate result's form, named as the
    other DAW scripts name them: ``"Chorus 1 · A minor · 128 BPM"``."""

    def most(items, a, b, value):
        best, cover = None, 0.0
        for it in items or []:
            c = min(b, float(it["end_s"])) - max(a, float(it["start_s"]))
            v = value(it)
            if c > cover and v is not None:
                best, cover = v, c
        return best

    def key_of(r):
        return None if r.get("silent") or not r.get("key") else r["key"]["key"]

    count, out = {}, []
    for s in result.get("form") or []:
        a, b = float(s["start_s"]), float(s["end_s"])
        fn = s.get("function")
        what = fn[:1].upper() + fn[1:] if fn else "Section " + str(s["label"])
        count[what] = count.get(what, 0) + 1
        bits = [f"{what} {count[what]}"]
        key = most(result.get("regions"), a, b, key_of)
        if key:
            bits.append(key)
        bpm = most(result.get("tempi"), a, b, lambda t: t.get("bpm"))
        if bpm is None:
            bpm = result.get("tempo_bpm")
        if bpm is None:
            bpm = most(result.get("regions"), a, b, lambda r: r.get("tempo_bpm"))
        if bpm is not None:
            bits.append(f"{float(bpm):.0f} BPM")
        out.append((a, b, " · ".join(bits)))
    return out


def arrangement_beat(clip, t_s, span_s, tempo):
    """The arrangement position (beats) where second ``t_s`` of the clip's file plays, or None
    outside the clip's span ``span_s`` (:func:`clip_span_s`). A warped clip maps it through its
    warp markers (``sample_to_beat_time``, Live 11+); an unwarped one plays in seconds at the
    song's ``tempo``."""
    start_s, end_s = span_s
    if not start_s - 1e-6 <= t_s < end_s:
        return None
    if getattr(clip, "warping", False):
        clip_beat = clip.sample_to_beat_time(t_s * float(clip.sample_rate))
        return float(clip.start_time) + (clip_beat - float(clip.start_marker))
    return float(clip.start_time) + (t_s - float(clip.start_marker)) * float(tempo) / 60.0


def form_cues(result, clip, span_s, tempo):
    """``[(beat, name)]``: a locator at the start of each section that starts inside the clip."""
    out = []
    for a, _, name in section_names(result):
        beat = arrangement_beat(clip, max(a, span_s[0]), span_s, tempo)
        if beat is not None and not any(abs(beat - b) < SAME_BEAT for b, _ in out):
            out.append((beat, TAG + name))
    return out


class CueWriter:
    """Writes locators one step per tick (:meth:`tick`), as Live's API requires."""

    def __init__(self, song, cues, log):
        self._song = song
        self._log = log
        self._steps = [("delete", c.time) for c in song.cue_points if _ours(c)]
        self._steps += [("add", beat, name) for beat, name in cues]
        self._restore = song.current_song_time
        self._stage = "move"
        self._waited = 0
        self._undo = hasattr(song, "begin_undo_step")
        if self._undo:
            song.begin_undo_step()

    @property
    def done(self):
        return not self._steps

    def tick(self):
        """One step; True when every locator is written (the position is then restored)."""
        if not self._steps:
            return True
        step = self._steps[0]
        beat = step[1]
        song = self._song
        if self._stage == "move":
            song.current_song_time = beat
            self._stage, self._waited = "toggle", 0
        elif self._stage == "toggle":
            if abs(song.current_song_time - beat) > SAME_BEAT:
                self._waited += 1
                if self._waited > MAX_WAIT_TICKS:
                    self._log(f"could not move to beat {beat:.3f}; locator skipped")
                    self._next()
                return False
            here = [c for c in song.cue_points if abs(c.time - beat) < SAME_BEAT]
            if step[0] == "delete":
                if here and _ours(here[0]):
                    song.set_or_delete_cue()
                self._next()
            elif here:  # a locator is there already: the toggle would delete it
                if _ours(here[0]):
                    here[0].name = step[2]
                self._next()
            else:
                song.set_or_delete_cue()
                self._stage = "name"
        elif self._stage == "name":
            here = [c for c in song.cue_points if abs(c.time - beat) < SAME_BEAT]
            if here:
                here[0].name = step[2]
                self._next()
            else:
                self._waited += 1
                if self._waited > MAX_WAIT_TICKS:
                    self._log(f"no locator appeared at beat {beat:.3f}")
                    self._next()
        if not self._steps:
            song.current_song_time = self._restore
            if self._undo:
                song.end_undo_step()
            return True
        return False

    def _next(self):
        self._steps.pop(0)
        self._stage, self._waited = "move", 0


def _ours(cue):
    return str(getattr(cue, "name", "")).startswith(TAG)
