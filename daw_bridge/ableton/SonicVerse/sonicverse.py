"""The SonicVerse control surface: selected audio clip -> engine -> clip name and colour.

Live calls :meth:`SonicVerse.update_display` about ten times a second; every network
operation happens there, on a non-blocking socket, so Live's UI never waits. Settings come
from ``settings.json`` next to this file when present (``host``, ``port``, ``token``,
``auto``, ``form``), else the defaults below. With ``"form": true``, selecting an arrangement
audio clip also asks for its file's form and writes a locator at each section (:mod:`.form`).
"""

import json
import os
import re
import socket
import time

from . import form, osc

HOST = "127.0.0.1"
PORT = 9000

# Addresses and argument order, as declared in daw_bridge/protocol.py (a test checks them).
ANNOTATE = "/sonicverse/region/annotate"
ANNOTATE_ARGS = (
    "id",
    "reply_port",
    "token",
    "path",
    "start_s",
    "end_s",
    "track",
    "name",
    "lyrics",
    "channels",
    "in_track",
)
PING = "/sonicverse/engine/ping"
PING_ARGS = ("id", "reply_port", "token")
NARRATE = "/sonicverse/track/narrate"
NARRATE_ARGS = ("id", "reply_port", "token", "path", "track", "regions", "channels")
ACCEPTED = "/sonicverse/reply/accepted"
PROGRESS = "/sonicverse/reply/progress"
RESULT = "/sonicverse/reply/result"
ERROR = "/sonicverse/reply/error"
BUSY = "/sonicverse/reply/busy"

RETRY_AFTER_S = 1.0  # re-send a request the engine has not acknowledged
RETRIES = 3
# ask again for an accepted request the engine has said nothing about this long: it
# acknowledges one it holds and sends a finished one's final reply again (one lost on the way)
REASK_S = 5.0
TIMEOUT_S = 120.0  # give up on a request after this long
# ... not counting the time it waits with other queued requests ahead of it (the engine says
# so in each acknowledgement), up to this many times TIMEOUT_S: one queued behind a job that
# never ends still ends
MAX_QUEUE_CREDIT = 3.0
SETTLE_S = 0.4  # wait for the selection to settle before sending
PROBE_S = 1.0  # while a request waits, ask the engine which instance it is this often
PROBE_TIMEOUT_S = 3.0  # a probe unanswered this long: the engine stopped

GENDER_CONFIDENCE = 0.7  # as daw_bridge.keys: P(gender | vocals) needed to name the gender
VOCALS = ("none", "male", "female")  # the order of a vocals estimate's probabilities

# Live's clip colour palette indices (0..69) for the vocals label.
VOCAL_COLOURS = {"none": 13, "male": 41, "female": 56}

_SUFFIX = re.compile(r"\s*\[SV [^\]]*\]$")


def _resolve(host):
    """The engine's IPv4 address, looked up once: a name in ``sendto`` would be looked up
    again on Live's main thread at every send."""
    try:
        return socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    except (OSError, IndexError):
        return host  # unresolvable now: sends fail and say so


def tag_name(name, text):
    """``name`` with our ``[SV ...]`` suffix replaced by ``[SV text]`` (removed if no text)."""
    base = _SUFFIX.sub("", name or "")
    if not text:
        return base
    return (base + " " if base else "") + "[SV " + text + "]"


def summary(annotation):
    """``"A minor · female vocals · 124 BPM"`` from a RegionAnnotation dict."""
    if annotation.get("silent"):
        return "silence"
    bits = []
    key = annotation.get("key")
    if key:
        bits.append(key["key"])
    vocals = annotation.get("vocals")
    if vocals:
        label = vocals["label"]
        p = vocals.get("probabilities") or ()
        sung = 1.0 - p[0] if len(p) == 3 else 0.0
        if label == "none":
            bits.append("no vocals")
        elif label in VOCALS and sung > 0 and p[VOCALS.index(label)] / sung < GENDER_CONFIDENCE:
            bits.append("vocals")  # the gender only when sure of it (as daw_bridge.keys)
        else:
            bits.append(label + " vocals")
    tempo = annotation.get("tempo_bpm")
    if isinstance(tempo, (int, float)):
        bits.append(f"{tempo:.0f} BPM")
    return " · ".join(bits)


def clip_span_s(clip):
    """The clip's ``[start, end)`` in seconds of its audio file.

    A looped clip plays from its start marker into the loop and then ``loop_start`` ..
    ``loop_end`` over and over: its span is ``min(start_marker, loop_start)`` .. ``loop_end``
    (its end marker plays no part). Warped clips keep their markers in beats: they are
    converted through the clip's warp map (``beat_to_sample_time``, Live 11+). Unwarped clips
    keep them in seconds. The end is clamped to the file's length (``sample_length`` /
    ``sample_rate``; ``Clip.sample_rate`` needs Live 11.0.5 or later).
    """
    start, end = clip.start_marker, clip.end_marker
    if getattr(clip, "looping", False):
        start, end = min(start, clip.loop_start), clip.loop_end
    rate = float(clip.sample_rate)
    if getattr(clip, "warping", False):
        start = clip.beat_to_sample_time(start) / rate
        end = clip.beat_to_sample_time(end) / rate
    length = getattr(clip, "sample_length", 0)
    if length and rate > 0:
        end = min(float(end), length / rate)
    return max(0.0, float(start)), float(end)


def track_name(clip):
    """The name of the clip's track. An arrangement clip's ``canonical_parent`` is the Track,
    or in Live 12 a TakeLane of it; a session clip's is its ClipSlot. Each of those has the
    Track as its own ``canonical_parent``; a Track is the parent with a ``mixer_device``."""
    parent = getattr(clip, "canonical_parent", None)
    for _ in range(3):
        if parent is None or hasattr(parent, "mixer_device"):
            break
        parent = getattr(parent, "canonical_parent", None)
    return str(getattr(parent, "name", "") or "")


class _Pending:
    def __init__(self, request_id, dgram, clip, now, kind="annotate"):
        self.id = request_id
        self.kind = kind
        self.dgram = dgram
        self.clip = clip
        self.sent_at = now
        self.heard_at = now
        self.started_at = now
        self.sends = 1
        self.accepted = False
        self.accepted_at = None
        self.parts = {}
        self.credit = 0.0  # seconds it waited with other requests ahead of it, as far as known
        self.queued_since = None  # since when the engine says others are ahead of it

    def queued(self, waiting, now):
        """Note whether the engine says other queued requests are ahead of it."""
        if self.queued_since is not None:
            self.credit += now - self.queued_since
        self.queued_since = now if waiting else None

    def overdue(self, now):
        """Whether it has taken longer than TIMEOUT_S, its wait in the queue not counted."""
        waited = self.credit + (now - self.queued_since if self.queued_since is not None else 0)
        return now - self.started_at - min(waited, MAX_QUEUE_CREDIT * TIMEOUT_S) > TIMEOUT_S


class SonicVerse:
    """A Control Surface without MIDI that annotates the selected audio clip."""

    def __init__(self, c_instance, settings=None, clock=time.monotonic):
        self._c = c_instance
        self._clock = clock
        cfg = settings if settings is not None else self._read_settings()
        self._engine = (_resolve(str(cfg.get("host", HOST))), int(cfg.get("port", PORT)))
        self._token = str(cfg.get("token", ""))
        self._auto = bool(cfg.get("auto", True))
        self._form = bool(cfg.get("form", False))
        self._cues = None  # the form.CueWriter writing locators, one step a tick
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._sock.bind(("127.0.0.1" if self._engine[0] in ("127.0.0.1", "localhost") else "", 0))
        self._pending = {}
        self._prefix = "live-" + os.urandom(4).hex()  # ids stay unique across script reloads
        self._counter = 0
        self._selected_at = None
        self._last_sent = None
        self._instance = None  # the engine instance that answered the last probe
        self._probe = None  # (id, sent_at) of the probe in flight
        self._probe_at = -PROBE_S
        self._song().view.add_detail_clip_listener(self._on_selection)
        self._log("ready: engine at {}:{}".format(*self._engine))

    # Live's Control Surface interface --------------------------------------------------

    def disconnect(self):
        view = self._song().view
        if view.detail_clip_has_listener(self._on_selection):
            view.remove_detail_clip_listener(self._on_selection)
        self._sock.close()

    def update_display(self):
        """Live's ~10 Hz tick: send when the selection settled, read replies, retry, expire."""
        now = self._clock()
        if self._selected_at is not None and now - self._selected_at >= SETTLE_S:
            self._selected_at = None
            self.annotate_selected_clip()
        self._receive()
        self._housekeeping(now)
        if self._cues is not None and self._cues.tick():
            self._cues = None
            self._show("SonicVerse: the form is in the arrangement's locators")

    def connect_script_instances(self, instanciated_scripts):
        pass

    def can_lock_to_devices(self):
        return False

    def refresh_state(self):
        pass

    def build_midi_map(self, midi_map_handle):
        pass

    def receive_midi(self, midi_bytes):
        pass

    def suggest_input_port(self):
        return ""

    def suggest_output_port(self):
        return ""

    def suggest_map_mode(self, cc_no, channel):
        return -1

    # Requests ------------------------------------------------------------------------

    def _on_selection(self):
        if self._auto:
            self._selected_at = self._clock()

    def annotate_selected_clip(self):
        """Send the selected audio clip to the engine. Returns the request id or None."""
        clip = self._song().view.detail_clip
        if clip is None or not getattr(clip, "is_audio_clip", False):
            return None
        path = getattr(clip, "file_path", "")
        if not path:
            self._show("SonicVerse: the clip has no audio file")
            return None
        start_s, end_s = clip_span_s(clip)
        track = track_name(clip)
        self._counter += 1
        rid = f"{self._prefix}-{self._counter}"
        values = {
            "id": rid,
            "reply_port": 0,
            "token": self._token,
            "path": path,
            "start_s": float(start_s),
            "end_s": float(end_s),
            "track": track,
            "name": tag_name(clip.name, None),
            "lyrics": "",
            "channels": "",  # a Live clip is one file, all its channels interleaved
            "in_track": 0,  # a clip is asked for alone
        }
        dgram = osc.encode(ANNOTATE, [values[a] for a in ANNOTATE_ARGS])
        self._pending[rid] = _Pending(rid, dgram, clip, self._clock())
        self._sendto(dgram)
        self._show("SonicVerse: listening to %s ..." % (clip.name or os.path.basename(path)))
        if self._form and getattr(clip, "is_arrangement_clip", False):
            self.ask_form(clip)
        return rid

    def ask_form(self, clip):
        """Ask for the form of the clip's file; its sections become locators. Returns the
        request id."""
        self._counter += 1
        rid = f"{self._prefix}-{self._counter}"
        values = {
            "id": rid,
            "reply_port": 0,
            "token": self._token,
            "path": clip.file_path,
            "track": track_name(clip),
            "regions": "",
            "channels": "",
        }
        dgram = osc.encode(NARRATE, [values[a] for a in NARRATE_ARGS])
        self._pending[rid] = _Pending(rid, dgram, clip, self._clock(), kind="form")
        self._sendto(dgram)
        return rid

    def _sendto(self, dgram):
        try:
            self._sock.sendto(dgram, self._engine)
        except OSError as exc:
            self._log(f"send failed: {exc}")
            self._show(
                f"SonicVerse: cannot reach the engine at {self._engine[0]}:{self._engine[1]}"
            )

    # Replies -------------------------------------------------------------------------

    def _receive(self):
        for _ in range(256):
            try:
                data = self._sock.recv(65536)
            except (TimeoutError, BlockingIOError):
                return
            except OSError as exc:
                self._log(f"receive failed: {exc}")
                return
            try:
                address, args = osc.decode(data)
            except osc.OscError as exc:
                self._log(f"malformed reply ignored: {exc}")
                continue
            if self._probe is not None and args and args[0] == self._probe[0]:
                self._on_probe(address, args)
            elif args and isinstance(args[0], str) and args[0] in self._pending:
                self._handle(address, args)

    def _handle(self, address, args):
        p = self._pending[args[0]]
        p.heard_at = self._clock()
        if p.accepted_at is None:
            p.accepted_at = p.heard_at
        if address in (ACCEPTED, PROGRESS):
            p.accepted = True
            position = args[1] if address == ACCEPTED and len(args) >= 2 else 0
            waiting = isinstance(position, int) and position > 0  # others ahead of it
            p.queued(waiting, p.heard_at)
        elif address == RESULT and len(args) >= 4:
            p.accepted = True
            p.parts[args[1]] = args[3]
            if len(p.parts) == args[2]:
                del self._pending[p.id]
                try:
                    annotation = json.loads("".join(p.parts[i] for i in range(args[2])))
                except (KeyError, ValueError) as exc:
                    self._log(f"undecodable result ignored: {exc}")
                    return
                if p.kind == "form":
                    self._apply_form(p.clip, annotation)
                else:
                    self._apply(p.clip, annotation)
        elif address == ERROR and len(args) >= 3:
            del self._pending[p.id]
            self._show(f"SonicVerse: {args[1]}: {args[2]}")
        elif address == BUSY:
            del self._pending[p.id]
            self._show("SonicVerse: the engine is busy; select the clip again later")

    def _apply(self, clip, annotation):
        text = summary(annotation)
        try:
            clip.name = tag_name(clip.name, text)
            vocals = annotation.get("vocals")
            if vocals and vocals.get("label") in VOCAL_COLOURS:
                clip.color_index = VOCAL_COLOURS[vocals["label"]]
        except (RuntimeError, AttributeError) as exc:  # the clip was deleted meanwhile
            self._log(f"could not update the clip: {exc}")
            return
        self._show("SonicVerse: " + (annotation.get("caption") or text))

    # Is the engine that accepted our requests still the one running? -------------------

    def _send_probe(self, now):
        self._counter += 1
        rid = f"{self._prefix}-probe-{self._counter}"
        self._probe = (rid, now)
        self._probe_at = now
        values = {"id": rid, "reply_port": 0, "token": self._token}
        self._sendto(osc.encode(PING, [values[a] for a in PING_ARGS]))

    def _on_probe(self, address, args):
        _, sent_at = self._probe
        self._probe = None
        if address != RESULT or len(args) < 4 or args[2] != 1:
            return
        try:
            instance = json.loads(args[3]).get("instance")
        except (ValueError, AttributeError):
            return
        previous, self._instance = self._instance, instance
        if previous is not None and instance != previous:
            self._restarted(sent_at, "the engine restarted")

    def _restarted(self, before, why):
        """Requests the lost engine had accepted are sent again (the new one runs them)."""
        lost = [
            p
            for p in self._pending.values()
            if p.accepted_at is not None and p.accepted_at < before
        ]
        for p in lost:
            p.accepted, p.accepted_at, p.parts, p.queued_since = False, None, {}, None
            p.sends, p.sent_at = 1, self._clock()
            self._sendto(p.dgram)
        if lost:
            self._log(f"{why}: {len(lost)} request(s) sent again")
            self._show(f"SonicVerse: {why}; asking again")

    def _apply_form(self, clip, result):
        song = self._song()
        try:
            cues = form.form_cues(result, clip, clip_span_s(clip), song.tempo)
        except (RuntimeError, AttributeError) as exc:  # the clip was deleted meanwhile
            self._log(f"could not place the form: {exc}")
            return
        if not cues:
            self._show("SonicVerse: no form found in the clip")
            return
        self._cues = form.CueWriter(song, cues, self._log)

    def _housekeeping(self, now):
        if self._probe is not None and now - self._probe[1] > PROBE_TIMEOUT_S:
            sent_at = self._probe[1]
            self._probe = None
            self._restarted(sent_at, "the engine stopped answering (restarting?)")
        waiting = any(p.accepted for p in self._pending.values())
        unknown = self._instance is None and bool(self._pending)
        if self._probe is None and (waiting or unknown) and now - self._probe_at >= PROBE_S:
            self._send_probe(now)
        for p in list(self._pending.values()):
            if p.overdue(now):
                del self._pending[p.id]
                self._show("SonicVerse: no answer in time (is `sonicverse engine` running?)")
            elif p.accepted and now - max(p.sent_at, p.heard_at) >= REASK_S:
                p.sent_at = now
                self._sendto(p.dgram)
            elif not p.accepted and now - p.sent_at >= RETRY_AFTER_S:
                if p.sends > RETRIES:
                    del self._pending[p.id]
                    host, port = self._engine
                    self._show(f"SonicVerse: the engine at {host}:{port} does not answer")
                else:
                    p.sends += 1
                    p.sent_at = now
                    self._sendto(p.dgram)

    # Helpers -------------------------------------------------------------------------

    def _song(self):
        return self._c.song()

    def _show(self, text):
        self._c.show_message(text)

    def _log(self, text):
        self._c.log_message("SonicVerse: " + text)

    @staticmethod
    def _read_settings():
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")
        try:
            with open(path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}
