from __future__ import annotations

import pytest

from omniroute_translator.codecs.think import ThinkSplitter, split_think


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>a</think>b", ("a", "b")),
        ("  \n<think>a</think>\n\n b", ("a", "b")),
        ("plain", ("", "plain")),
        ("  plain", ("", "  plain")),
        ("x <think>a</think>", ("", "x <think>a</think>")),
        ("<think>never closed", ("never closed", "")),
        ("<think>a</think>", ("a", "")),
        ("<thi", ("", "<thi")),
        ("<b>bold</b>", ("", "<b>bold</b>")),
        ("", ("", "")),
        ("   ", ("", "   ")),
        ("<think>a</think>b <think>c</think>", ("a", "b <think>c</think>")),
    ],
)
def test_split_think(text: str, expected: tuple[str, str]) -> None:
    assert split_think(text) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
def test_incremental_matches_whole(size: int) -> None:
    text = "\n<think>step 1 </thin then </think>\n\nanswer <think> literal"
    splitter = ThinkSplitter()
    reasoning, content = "", ""
    for i in range(0, len(text), size):
        r, c = splitter.feed(text[i : i + size])
        reasoning, content = reasoning + r, content + c
    r, c = splitter.flush()
    assert (reasoning + r, content + c) == split_think(text) == ("step 1 </thin then ", "answer <think> literal")


def test_text_state_passes_through_without_holding() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("hello") == ("", "hello")
    assert splitter.feed("<think>") == ("", "<think>")
    assert splitter.flush() == ("", "")


def test_partial_close_tag_is_held_until_decided() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<think>abc</") == ("abc", "")
    assert splitter.feed("b>") == ("</b>", "")
    assert splitter.feed("</think>ok") == ("", "ok")
