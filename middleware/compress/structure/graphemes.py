"""Grapheme clusters and scripts written without spaces.

Unit boundaries must fall between grapheme clusters ('हि', 'é' as e + U+0301, '1️⃣', '👨‍👩‍👧'), so they are
snapped to the extended grapheme clusters of Unicode's UAX #29 as the `regex` package finds them
(`\\X`): a maintained implementation that follows each Unicode release, where `re` has none.
"""

from __future__ import annotations

import regex

_CLUSTER = regex.compile(r"\X")
# scripts written without spaces between words: no space is ever put between two of their characters
NO_SPACE = regex.compile(
    r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\p{Tibetan}"
    r"\u3000-\u303f\uff00-\uffef]"
)
# Han and kana runs are cut where UAX #29 puts word boundaries (an ideograph is a word of its own);
# Thai, Lao, Khmer and Myanmar need a dictionary to find words, so their runs stay whole
_IDEOGRAPHIC = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}]")
_UAX29_WORDS = regex.compile(r"(?wV1)\b")


def cluster_starts(text: str, start: int = 0, end: int | None = None) -> set[int]:
    """Offsets in [start, end] where a grapheme cluster of text[start:end] begins (and `end` itself)."""
    end = len(text) if end is None else end
    starts = {m.start() for m in _CLUSTER.finditer(text, start, end)}
    starts.add(end)
    return starts


# what can join two code points into one cluster: marks, joiners and other format characters, variation
# selectors, emoji modifiers and flags, Hangul jamo, prepended marks, CR LF
_JOINING = regex.compile(
    r"[\p{M}\p{Cf}\p{Emoji_Modifier}\p{Regional_Indicator}\p{Hangul_Syllable_Type=L}"
    r"\p{Hangul_Syllable_Type=V}\p{Hangul_Syllable_Type=T}\p{Hangul_Syllable_Type=LV}"
    r"\p{Hangul_Syllable_Type=LVT}\p{Grapheme_Cluster_Break=Prepend}\r]"
)


def simple_clusters(text: str) -> bool:
    """True when every code point of `text` is a cluster of its own (nothing that joins them)."""
    return not _JOINING.search(text)


def has_ideographs(text: str, start: int = 0, end: int | None = None) -> bool:
    return bool(_IDEOGRAPHIC.search(text, start, len(text) if end is None else end))


def split_ideographic(word: str) -> list[str]:
    """A word run cut at UAX #29 word boundaries when it holds Han or kana; else the run whole."""
    if not _IDEOGRAPHIC.search(word):
        return [word]
    pieces: list[str] = []
    for piece in _UAX29_WORDS.split(word):
        if not piece:
            continue
        if piece.isspace() and pieces:
            pieces[-1] += piece  # spaces stay with what they follow (they lead the next unit elsewhere)
        else:
            pieces.append(piece)
    return pieces


def needs_space(before: str, after: str) -> bool:
    """Whether joining `before` and `after` (text was dropped between them) would glue two words:
    both sides are letters or digits, and neither is from a script written without spaces."""
    if not before or not after:
        return False
    left, right = before[-1], after[0]
    if not (left.isalnum() and right.isalnum()):
        return False
    return not (NO_SPACE.match(left) or NO_SPACE.match(right))
