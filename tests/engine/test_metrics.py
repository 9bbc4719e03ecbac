"""Each metric against values computed by hand on tiny cases; the manifest and its importers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from engine.data.importers import from_labels_csv, from_musicbench, from_song_describer
from engine.data.manifest import ManifestRow, read_manifest, write_manifest
from engine.metrics import captions, features, retrieval

REFS = [
    ["a happy song with a bright piano"],
    ["a slow violin piece in a minor key"],
    ["drums and bass with a heavy groove"],
]
SAME = [r[0] for r in REFS]
DISJOINT = ["xylophone zebra quartz", "umbrella jackal vortex", "kettle walrus nimbus"]


# --- captions -------------------------------------------------------------------------


def test_bleu_identical_is_one_and_disjoint_zero() -> None:
    for level in ("corpus", "sentence"):
        same = captions.bleu(REFS, SAME, level=level)  # type: ignore[arg-type]
        assert set(same) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"}
        assert all(v == pytest.approx(1.0) for v in same.values())
        other = captions.bleu(REFS, DISJOINT, level=level)  # type: ignore[arg-type]
        assert all(v == pytest.approx(0.0, abs=1e-6) for v in other.values())


def test_bleu_by_hand() -> None:
    # same length (no brevity penalty); 2 of 4 unigrams match, 1 of 3 bigrams
    got = captions.bleu([["piano guitar drums bass"]], ["piano guitar flute harp"])
    assert got["BLEU-1"] == pytest.approx(0.5, abs=1e-6)
    assert got["BLEU-2"] == pytest.approx((0.5 * 1 / 3) ** 0.5, abs=1e-6)


def test_rouge_identical_disjoint_and_recall_variant() -> None:
    assert captions.rouge(REFS, SAME)["ROUGE-L"] == pytest.approx(1.0)
    assert captions.rouge(REFS, DISJOINT)["ROUGE-L"] == pytest.approx(0.0)
    # prediction holds 2 of the reference's 4 words, in order: recall 1/2, precision 1
    refs, pred = [["piano guitar organ harp"]], ["piano organ"]
    assert captions.rouge(refs, pred, variant="recall")["ROUGE-L"] == pytest.approx(0.5)
    assert captions.rouge(refs, pred)["ROUGE-L"] == pytest.approx(2 * 0.5 / 1.5)
    assert captions.rouge(refs, pred)["ROUGE-2"] == pytest.approx(0.0)


def test_best_reference_counts() -> None:
    refs = [["something else entirely", "a happy song with a bright piano"]]
    assert captions.rouge(refs, ["a happy song with a bright piano"])["ROUGE-L"] == 1.0


def test_cider_d_identical_and_disjoint() -> None:
    assert captions.cider_d(REFS, SAME) == pytest.approx(10.0)  # x10 scale of CIDEr-D
    assert captions.cider_d(REFS, DISJOINT) == pytest.approx(0.0)


def test_sacrebleu_scale_and_char_variant() -> None:
    assert captions.sacrebleu_score(REFS, SAME) == pytest.approx(100.0)
    assert captions.sacrebleu_score(REFS, DISJOINT) == pytest.approx(0.0)
    assert captions.sacrebleu_score(REFS, DISJOINT, tokenize_as="char") > 0.0  # shared letters


def test_caption_metrics_reject_mismatched_rows() -> None:
    with pytest.raises(ValueError, match="2 predictions for 3 reference sets"):
        captions.caption_metrics(REFS, SAME[:2])
    with pytest.raises(ValueError, match=r"rows \[0\] have no reference"):
        captions.bleu([[]], ["x"])


@pytest.mark.skipif(not captions.java_available(), reason="METEOR needs a Java runtime")
def test_meteor_identical_and_disjoint() -> None:
    assert captions.meteor(REFS, SAME) == pytest.approx(1.0)
    assert captions.meteor(REFS, DISJOINT) == pytest.approx(0.0)


def test_meteor_without_java_is_skipped(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(captions, "java_available", lambda: False)
    assert captions.meteor(REFS, SAME) is None
    assert "METEOR skipped" in caplog.text
    got = captions.caption_metrics(REFS, SAME, rouge_variant="recall", bleu_level="sentence")
    assert "METEOR" not in got
    assert got["ROUGE-L (recall)"] == pytest.approx(1.0)
    assert got["BLEU-4 (sentence)"] == pytest.approx(1.0)


# --- retrieval and BERTScore ----------------------------------------------------------


def test_retrieval_scores_by_hand() -> None:
    # query 0 finds its item first, query 1 second, query 2 third
    sim = np.array([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.7, 0.6, 0.2]])
    got = retrieval.retrieval_scores(sim, ks=(1, 2, 5))
    assert got["R@1"] == pytest.approx(1 / 3)
    assert got["R@2"] == pytest.approx(2 / 3)
    assert got["P@2"] == pytest.approx(1 / 3)
    assert "R@5" not in got  # more than there are items
    assert got["median rank"] == 2.0
    assert got["MRR"] == pytest.approx((1 + 1 / 2 + 1 / 3) / 3)
    with pytest.raises(ValueError, match="square"):
        retrieval.retrieval_scores(np.zeros((2, 3)))


WORDS = "a the song piano violin drums bass slow happy sad bright heavy groove with and in key"


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT with random weights and a WordPiece vocab, saved like a hub folder."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS.split()]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def test_retrieval_ranks_a_planted_match_first(tiny_text_model: Path) -> None:
    tm = retrieval.load_text_model(tiny_text_model)
    queries = ["a happy song with piano", "slow sad violin", "heavy drums and bass groove"]
    items = ["heavy drums and bass groove", "bright piano", "slow sad violin in a key"]
    # plant query 0's exact text as its own item: cosine 1, ranked first
    got = retrieval.retrieval(tm, queries, [queries[0], *items[1:]])
    q = retrieval.embed(tm, queries)
    i = retrieval.embed(tm, [queries[0], *items[1:]])
    ranks = np.argsort(-(q @ i.T), axis=1)
    assert ranks[0, 0] == 0
    assert got["R@1"] >= 1 / 3
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0)


def test_bertscore_identical_is_one(tiny_text_model: Path) -> None:
    tm = retrieval.load_text_model(tiny_text_model)
    got = retrieval.bertscore(tm, [["a happy song with piano"]], ["a happy song with piano"])
    assert got["BERTScore-F1"] == pytest.approx(1.0, abs=1e-5)
    other = retrieval.bertscore(tm, [["a happy song with piano"]], ["heavy drums"])
    assert other["BERTScore-F1"] < 1.0


def test_missing_text_model_is_named(tmp_path: Path) -> None:
    from engine.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="does not exist"):
        retrieval.load_text_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match="cannot load"):
        retrieval.load_text_model(tmp_path / "empty")


# --- features -------------------------------------------------------------------------


def test_key_scores_by_relation() -> None:
    assert features.key_score("C major", "C major") == 1.0
    assert features.key_score("C major", "G major") == 0.5  # fifth above
    assert features.key_score("C major", "A minor") == 0.3  # relative
    assert features.key_score("C major", "C minor") == 0.2  # parallel
    assert features.key_score("C major", "F# major") == 0.0
    assert features.key_score("C major", None) == 0.0
    got = features.key_metrics(
        ["C major", "C major", "A minor", "E minor"], ["C major", "G major", "C major", None]
    )
    assert got["MIREX weighted"] == pytest.approx((1 + 0.5 + 0.3 + 0) / 4)
    assert got["accuracy"] == pytest.approx(0.25)
    assert got["share no key"] == pytest.approx(0.25)
    m = features.key_confusion(["C major", "E minor"], ["G major", None])
    assert m.shape == (24, 25) and m[0, 7] == 1 and m[16, 24] == 1 and m.sum() == 2


def test_tempo_accuracies_by_hand() -> None:
    got = features.tempo_metrics([120, 100, 90, 60, 80], [123, 200, 30, None, 90])
    # 123 within 4 % of 120; 200 = 2 x 100; 30 = 90 / 3; None wrong; 90 is 12.5 % off 80
    assert got == {"accuracy-1": pytest.approx(1 / 5), "accuracy-2": pytest.approx(3 / 5)}


def test_vocals_accuracy_and_confusion() -> None:
    got, m = features.vocals_metrics(
        ["none", "male", "female", "female"], ["none", "female", "female", None]
    )
    assert got["accuracy"] == pytest.approx(0.5)
    assert got["presence accuracy"] == pytest.approx(0.75)
    assert m.tolist() == [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]]


def test_tag_metrics_by_hand() -> None:
    refs = [["piano"], [], ["piano", "drums"], ["drums"]]
    scores = [{"piano": 0.9}, {"piano": 0.2}, {"piano": 0.8, "drums": 0.1}, {"drums": 0.6}]
    reported = [["piano"], [], ["piano"], ["drums", "piano"]]
    got = features.tag_metrics(refs, scores, reported)
    # piano ranks both positives first (AUC 1); drums: positives 0.1 and 0.6, negatives 0, 0
    assert got["ROC-AUC"] == pytest.approx((1.0 + 1.0) / 2)
    assert got["PR-AUC"] == pytest.approx(1.0)
    # tp: piano r0, piano r2, drums r3 = 3; fp: piano r3 = 1; fn: drums r2 = 1
    assert got["F1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))


def test_events_within_ten_seconds_same_kind() -> None:
    counts = features.event_counts(
        [("key", 30.0), ("tempo", 90.0)], [("key", 38.0), ("tempo", 70.0), ("vocals", 30.0)]
    )
    assert counts == (1, 2, 3)  # tempo 20 s off and vocals of another kind do not match
    got = features.event_metrics([counts, (0, 0, 0)])
    assert got["precision"] == pytest.approx(1 / 3)
    assert got["recall"] == pytest.approx(1 / 2)


def test_reliability_by_hand() -> None:
    conf, acc, count, ece = features.reliability(
        [0.05, 0.15, 0.95, 0.95], [False, True, True, False], bins=10
    )
    assert count.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 0, 2]
    assert acc[9] == pytest.approx(0.5) and conf[9] == pytest.approx(0.95)
    assert ece == pytest.approx((0.05 + 0.85 + 2 * 0.45) / 4)


# --- manifest ---------------------------------------------------------------------------


def test_manifest_round_trip_and_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lines = [
        {
            "id": "a",
            "audio": "clips/a.wav",
            "start_s": 0,
            "end_s": 10,
            "captions": ["x"],
            "labels": {
                "key": "Gb minor",
                "tempo_bpm": 96,
                "vocals": "female",
                "genres": [],
                "events": [{"kind": "key", "time_s": 5}],
            },
        },
        {"id": "b", "audio": "b.wav", "labels": {"key": "H major"}},
        {"id": "c", "audio": "c.wav", "labels": {"vocals": "choir"}},
        {"audio": "d.wav", "start_s": 5, "end_s": 2},
        {"id": "a", "audio": "again.wav"},
        {"audio": "e.wav", "colour": "red"},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n"
    path = tmp_path / "m.jsonl"
    path.write_text(text)
    m = read_manifest(path)
    assert [r.id for r in m.rows] == ["a"]
    assert [n for n, _ in m.skipped] == [2, 3, 4, 5, 6, 7]
    assert "row 2 skipped" in caplog.text and "'H major'" in caplog.text
    assert "1 rows read, 6 skipped" in caplog.text
    row = m.rows[0]
    assert row.audio == str(tmp_path / "clips" / "a.wav")
    assert row.labels.key == "F# minor" and row.labels.genres == () and row.labels.moods is None
    write_manifest(m.rows, tmp_path / "out" / "m2.jsonl")
    again = read_manifest(tmp_path / "out" / "m2.jsonl")
    assert again.rows == m.rows and not again.skipped


def test_import_labels_csv_keeps_rows_and_drops_bad_values(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(
        "file,content,vocals,key_ref,tempo_ref_bpm\n"
        "a.ogg,folk song,female,Bb major,88.4\n"
        "b.ogg,trumpet,none,F (blues/dorian),90\n"
        "c.ogg,audiobook,speech (male narrator),,\n"
    )
    rows = list(
        from_labels_csv(tmp_path / "labels.csv", audio_root=tmp_path, caption_column="content")
    )
    assert [r.id for r in rows] == ["a", "b", "c"]
    assert rows[0].labels.key == "Bb major" and rows[0].labels.tempo_bpm == 88.4
    assert rows[1].labels.key is None and rows[1].labels.tempo_bpm == 90.0
    assert rows[2].labels.vocals is None and rows[2].captions == ("audiobook",)
    assert rows[0].audio == str(tmp_path / "a.ogg")


def test_import_musicbench_and_song_describer(tmp_path: Path) -> None:
    mb = [
        {
            "location": "data/x.wav",
            "main_caption": "A calm piano.",
            "alt_caption": "Piano.",
            "key": ["A", "minor"],
            "bpm": 72,
        },
        {"location": "data/y.wav", "main_caption": "Loud rock.", "key": "E major", "bpm": 140.5},
        {"main_caption": "no audio"},
    ]
    (tmp_path / "mb.json").write_text("\n".join(json.dumps(x) for x in mb))
    rows = list(from_musicbench(tmp_path / "mb.json", audio_root=tmp_path))
    assert [r.id for r in rows] == ["x", "y"]
    assert rows[0].captions == ("A calm piano.", "Piano.")
    assert rows[0].labels.key == "A minor" and rows[1].labels.tempo_bpm == 140.5
    (tmp_path / "sd.csv").write_text(
        "caption_id,track_id,caption,path\n1,7,A slow waltz.,00/7.mp3\n2,7,Piano waltz.,00/7.mp3\n"
        "3,9,Synth pop.,00/9.mp3\n"
    )
    rows = list(from_song_describer(tmp_path / "sd.csv", audio_root=tmp_path))
    assert rows == [
        ManifestRow(
            id="7", audio=str(tmp_path / "00/7.mp3"), captions=("A slow waltz.", "Piano waltz.")
        ),
        ManifestRow(id="9", audio=str(tmp_path / "00/9.mp3"), captions=("Synth pop.",)),
    ]


def test_tokenizer_keeps_sharps_and_every_script() -> None:
    text = "A C# minor ballad — très calme, 日本語の歌! 100% rock & roll (live)."
    words = "a c# minor ballad très calme 日本語の歌 100 % rock & roll live"
    assert captions.tokenize(text) == words
    assert captions.tokenize("Ελληνικά: Ѐ-flat?") == "ελληνικά ѐ flat"
