"""The lexical half of a semantic hit: two questions may share a reply only when, beside their embeddings being
close, they say the same thing in the same words up to form.

Small sentence-embedding models place "convert a string to an integer" and "convert an integer to a string",
"is it safe" and "is it unsafe", "2 + 2" and "2 + 3" within a hair of each other (cosine 0.89 to 0.996 with
all-MiniLM-L6-v2 on the calibration set), so no threshold separates them from paraphrases. A false hit returns a
wrong answer, so the tier also requires the two questions' *content signatures* to be equal: their words after
normalising what does not change meaning (case, punctuation, contractions, articles, plural endings, number words
as digits, "how do/can I" as "how to", "which" as "what", a leading "can you", and a few glue words such as "of",
"in", "for", "is") in the same order. Numbers, negations, names, pronouns, tense, directional prepositions ("to",
"from", "about") and word order all stay in the signature: the calibration set (tests/data/) has a pair for each.

Pure functions: no I/O, no state.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["same_question", "signature"]

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"'})
_HOW_TO = re.compile(r"\bhow (?:do|does|can|could|would|should|shall|might) (?:i|you|we|one)\b")
_NOT = re.compile(r"\b(can|won|shan)'t\b|n't\b")
_CONTRACTIONS = (
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'d\b"), " would"),
    # "what's" / "it's" / "that's": 's after these is "is"; after a name it is a possessive, dropped below
    (re.compile(r"\b(what|who|where|when|why|how|it|that|there|here|he|she)'s\b"), r"\1 is"),
)
_TOKEN = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*")
_DROP = frozenset(
    {"a", "an", "the", "please", "do", "does", "did", "s"}
    # glue whose presence or choice does not change the question ("ingredient of/in guacamole")
    | {"of", "in", "for", "on", "with", "at", "is", "that", "it", "there", "have"}
)
_POLITE = frozenset({"can", "could", "would", "will"})
_SAME = {
    "which": "what",
    "are": "is",
    "am": "is",
    "were": "was",
    "cannot": "can not",
    "won": "will",
    "shan": "shall",
}
_NUMBER_WORDS = {
    word: str(value)
    for value, word in enumerate(
        [
            *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
            *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen"),
            *("nineteen", "twenty"),
        ]
    )
}


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def signature(text: str) -> tuple[str, ...]:
    """The question's content words in order, normalised (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    text = _HOW_TO.sub("how to", text)
    text = _NOT.sub(lambda m: (m.group(1) or "") + " not", text)
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    tokens = _TOKEN.findall(text)
    if len(tokens) > 2 and tokens[0] in _POLITE and tokens[1] == "you":
        tokens = tokens[2:]
    out: list[str] = []
    for token in tokens:
        if token[0].isdigit():
            out.append(token.replace(",", ""))
            continue
        word = _SAME.get(token, token)
        if word in _DROP:
            continue
        for part in word.split():
            out.append(_NUMBER_WORDS.get(part) or _singular(part))
    return tuple(out)


def same_question(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` have the same content signature (the lexical condition of a semantic hit)."""
    return signature(a) == signature(b)
