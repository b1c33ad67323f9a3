"""Caption segmentation and the srt/vtt renderings (pure)."""

from __future__ import annotations

from omniroute_executor.modalities._captions import MAX_WORDS, Segment, Word, segments, segments_json, srt, vtt


def test_a_segment_ends_at_a_sentence_end_and_at_a_pause() -> None:
    words = [
        Word("Hi", 0.0, 0.2),
        Word("there.", 0.2, 0.5),
        Word("So", 0.6, 0.7),
        Word("then", 0.7, 0.9),
        Word("after", 2.5, 2.8),  # 1.6 s of silence before it
        Word("that?", 2.8, 3.0),
    ]
    assert segments(words) == [
        Segment(0.0, 0.5, "Hi there."),
        Segment(0.6, 0.9, "So then"),
        Segment(2.5, 3.0, "after that?"),
    ]


def test_a_long_run_of_words_is_cut_into_readable_segments() -> None:
    words = [Word(f"w{i}", i * 0.3, i * 0.3 + 0.25) for i in range(MAX_WORDS + 5)]
    parts = segments(words)
    assert [len(p.text.split()) for p in parts] == [MAX_WORDS, 5]
    assert parts[1].start == words[MAX_WORDS].start


def test_without_word_timings_the_text_is_one_segment_over_the_audio() -> None:
    assert segments([], text=" Only text. ", duration=4.25) == [Segment(0.0, 4.25, "Only text.")]
    assert segments([], text="", duration=4.25) == []


def test_srt_and_vtt_clocks() -> None:
    parts = [Segment(0.0, 1.5, "one"), Segment(3725.0424, 3727.9996, "two")]
    assert srt(parts) == "1\n00:00:00,000 --> 00:00:01,500\none\n\n2\n01:02:05,042 --> 01:02:08,000\ntwo\n\n"
    assert vtt(parts) == "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\none\n\n01:02:05.042 --> 01:02:08.000\ntwo\n\n"
    assert vtt([]) == "WEBVTT\n\n"
    assert [s["id"] for s in segments_json(parts)] == [0, 1]
