"""Label sets shared by every backend: the 24 keys and the vocal classes.

Indices are fixed: ``KEYS[i]`` for ``i < 12`` is the major key on pitch class ``i``
(0 = C), ``KEYS[12 + i]`` the minor key on pitch class ``i``.
"""

from __future__ import annotations

PITCH_CLASSES: tuple[str, ...] = (
    "C",
    "C#",
    "D",
    "Eb",
    "E",
    "F",
    "F#",
    "G",
    "Ab",
    "A",
    "Bb",
    "B",
)
MODES: tuple[str, ...] = ("major", "minor")
KEYS: tuple[str, ...] = tuple(f"{pc} {mode}" for mode in MODES for pc in PITCH_CLASSES)
VOCALS: tuple[str, ...] = ("none", "male", "female")

_ENHARMONIC = {
    "Db": "C#",
    "D#": "Eb",
    "Gb": "F#",
    "G#": "Ab",
    "A#": "Bb",
    "Cb": "B",
    "Fb": "E",
    "E#": "F",
    "B#": "C",
}


def key_index(name: str) -> int:
    """Index of a key name in :data:`KEYS`, accepting enharmonic spellings.

    Args:
        name: e.g. ``"F# minor"``, ``"Gb minor"``, ``"a minor"`` or ``"C:major"`` (JAMS style).

    Returns:
        The index into :data:`KEYS`.

    Raises:
        ValueError: if the name is not a tonic followed by ``major`` or ``minor``.
    """
    parts = name.replace(":", " ").split()
    if len(parts) != 2 or parts[1].lower() not in MODES:
        raise ValueError(f"key name {name!r} is not '<tonic> major|minor', e.g. 'F# minor'")
    tonic = parts[0][:1].upper() + parts[0][1:]
    tonic = _ENHARMONIC.get(tonic, tonic)
    if tonic not in PITCH_CLASSES:
        raise ValueError(f"key name {name!r} has unknown tonic {parts[0]!r}")
    return PITCH_CLASSES.index(tonic) + 12 * MODES.index(parts[1].lower())


def key_tonic_mode(index: int) -> tuple[int, str]:
    """Pitch class (0 = C) and mode of ``KEYS[index]``."""
    return index % 12, MODES[index // 12]


# Tag sets of the sonicverse heads. SonicVerse trained its instrument, mood/theme and genre
# heads on the MTG-Jamendo autotagging subsets; these are those subsets' tag lists (the
# 40/56/87-tag sets of the dataset's published split-0 results,
# github.com/MTG/mtg-jamendo-dataset results/ml4md2019/auc_{instrument,mood,genre}.tsv at
# commit 1b4fa8c), without the "instrument---" / "mood/theme---" / "genre---" prefixes.
# Head output i is tag i: alphabetical order, as a multi-label binarizer sorts them.

INSTRUMENTS: tuple[str, ...] = (
    "accordion",
    "acousticbassguitar",
    "acousticguitar",
    "bass",
    "beat",
    "bell",
    "bongo",
    "brass",
    "cello",
    "clarinet",
    "classicalguitar",
    "computer",
    "doublebass",
    "drummachine",
    "drums",
    "electricguitar",
    "electricpiano",
    "flute",
    "guitar",
    "harmonica",
    "harp",
    "horn",
    "keyboard",
    "oboe",
    "orchestra",
    "organ",
    "pad",
    "percussion",
    "piano",
    "pipeorgan",
    "rhodes",
    "sampler",
    "saxophone",
    "strings",
    "synthesizer",
    "trombone",
    "trumpet",
    "viola",
    "violin",
    "voice",
)
"""MTG-Jamendo ``autotagging_instrument`` tags, alphabetical (40 tags)."""

MOODS: tuple[str, ...] = (
    "action",
    "adventure",
    "advertising",
    "background",
    "ballad",
    "calm",
    "children",
    "christmas",
    "commercial",
    "cool",
    "corporate",
    "dark",
    "deep",
    "documentary",
    "drama",
    "dramatic",
    "dream",
    "emotional",
    "energetic",
    "epic",
    "fast",
    "film",
    "fun",
    "funny",
    "game",
    "groovy",
    "happy",
    "heavy",
    "holiday",
    "hopeful",
    "inspiring",
    "love",
    "meditative",
    "melancholic",
    "melodic",
    "motivational",
    "movie",
    "nature",
    "party",
    "positive",
    "powerful",
    "relaxing",
    "retro",
    "romantic",
    "sad",
    "sexy",
    "slow",
    "soft",
    "soundscape",
    "space",
    "sport",
    "summer",
    "trailer",
    "travel",
    "upbeat",
    "uplifting",
)
"""MTG-Jamendo ``autotagging_moodtheme`` tags, alphabetical (56 tags)."""

GENRES: tuple[str, ...] = (
    "60s",
    "70s",
    "80s",
    "90s",
    "acidjazz",
    "alternative",
    "alternativerock",
    "ambient",
    "atmospheric",
    "blues",
    "bluesrock",
    "bossanova",
    "breakbeat",
    "celtic",
    "chanson",
    "chillout",
    "choir",
    "classical",
    "classicrock",
    "club",
    "contemporary",
    "country",
    "dance",
    "darkambient",
    "darkwave",
    "deephouse",
    "disco",
    "downtempo",
    "drumnbass",
    "dub",
    "dubstep",
    "easylistening",
    "edm",
    "electronic",
    "electronica",
    "electropop",
    "ethno",
    "eurodance",
    "experimental",
    "folk",
    "funk",
    "fusion",
    "groove",
    "grunge",
    "hard",
    "hardrock",
    "hiphop",
    "house",
    "idm",
    "improvisation",
    "indie",
    "industrial",
    "instrumentalpop",
    "instrumentalrock",
    "jazz",
    "jazzfusion",
    "latin",
    "lounge",
    "medieval",
    "metal",
    "minimal",
    "newage",
    "newwave",
    "orchestral",
    "pop",
    "popfolk",
    "poprock",
    "postrock",
    "progressive",
    "psychedelic",
    "punkrock",
    "rap",
    "reggae",
    "rnb",
    "rock",
    "rocknroll",
    "singersongwriter",
    "soul",
    "soundtrack",
    "swing",
    "symphonic",
    "synthpop",
    "techno",
    "trance",
    "triphop",
    "world",
    "worldfusion",
)
"""MTG-Jamendo ``autotagging_genre`` tags, alphabetical (87 tags)."""
