"""Japanese name tables with readings and romaji, and passport Hepburn."""

from __future__ import annotations

from typing import NamedTuple

from publicmesh.population.name_data import FAMILY_NAMES_TEXT, FEMALE_NAMES_TEXT, MALE_NAMES_TEXT

ERAS = ("o", "m", "n")  # popular for births before 1956, 1956–1989, from 1990


class FamilyName(NamedTuple):
    """A family name and how many thousand people bear it (roughly)."""

    kanji: str
    kana: str
    romaji: str
    weight: int


class GivenName(NamedTuple):
    """A given name and the era in which it was popular."""

    kanji: str
    kana: str
    romaji: str
    era: str


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.strip().splitlines()]


FAMILY_NAMES: tuple[FamilyName, ...] = tuple(FamilyName(k, r, h, int(w)) for k, r, h, w in _rows(FAMILY_NAMES_TEXT))
MALE_NAMES: tuple[GivenName, ...] = tuple(GivenName(*row) for row in _rows(MALE_NAMES_TEXT))
FEMALE_NAMES: tuple[GivenName, ...] = tuple(GivenName(*row) for row in _rows(FEMALE_NAMES_TEXT))

# Readings where a long-vowel-looking pair spans two morphemes, so passport Hepburn keeps both vowels.
HEPBURN_EXCEPTIONS = {"イノウエ": "Inoue", "マツウラ": "Matsuura"}

_MORAE = {
    "ア": "a",
    "イ": "i",
    "ウ": "u",
    "エ": "e",
    "オ": "o",
    "カ": "ka",
    "キ": "ki",
    "ク": "ku",
    "ケ": "ke",
    "コ": "ko",
    "サ": "sa",
    "シ": "shi",
    "ス": "su",
    "セ": "se",
    "ソ": "so",
    "タ": "ta",
    "チ": "chi",
    "ツ": "tsu",
    "テ": "te",
    "ト": "to",
    "ナ": "na",
    "ニ": "ni",
    "ヌ": "nu",
    "ネ": "ne",
    "ノ": "no",
    "ハ": "ha",
    "ヒ": "hi",
    "フ": "fu",
    "ヘ": "he",
    "ホ": "ho",
    "マ": "ma",
    "ミ": "mi",
    "ム": "mu",
    "メ": "me",
    "モ": "mo",
    "ヤ": "ya",
    "ユ": "yu",
    "ヨ": "yo",
    "ラ": "ra",
    "リ": "ri",
    "ル": "ru",
    "レ": "re",
    "ロ": "ro",
    "ワ": "wa",
    "ヰ": "i",
    "ヱ": "e",
    "ヲ": "o",
    "ン": "n",
    "ガ": "ga",
    "ギ": "gi",
    "グ": "gu",
    "ゲ": "ge",
    "ゴ": "go",
    "ザ": "za",
    "ジ": "ji",
    "ズ": "zu",
    "ゼ": "ze",
    "ゾ": "zo",
    "ダ": "da",
    "ヂ": "ji",
    "ヅ": "zu",
    "デ": "de",
    "ド": "do",
    "バ": "ba",
    "ビ": "bi",
    "ブ": "bu",
    "ベ": "be",
    "ボ": "bo",
    "パ": "pa",
    "ピ": "pi",
    "プ": "pu",
    "ペ": "pe",
    "ポ": "po",
    "ヴ": "vu",
}
_YOON = {"ャ": "a", "ュ": "u", "ョ": "o"}


def _syllables(kana: str) -> list[str]:
    """Split katakana into romanised syllables (digraphs joined, ッ and ン kept as markers)."""
    out: list[str] = []
    for ch in kana:
        if ch in _YOON and out and out[-1] not in ("ッ", "ン"):
            stem = out[-1][:-1]  # キ→k, シ→sh, チ→ch, ジ→j
            out[-1] = stem + _YOON[ch] if stem.endswith(("sh", "ch", "j")) else stem + "y" + _YOON[ch]
        elif ch in ("ッ", "ン", "ー"):
            out.append(ch)
        elif ch in _MORAE:
            out.append(_MORAE[ch])
        else:
            raise ValueError(f"not a katakana reading: {kana!r}")
    return out


def hepburn(kana: str) -> str:
    """Passport (外務省) Hepburn of a katakana reading: no macrons, オウ/オオ → o, ウウ → u, ンb/m/p → m."""
    if kana in HEPBURN_EXCEPTIONS:
        return HEPBURN_EXCEPTIONS[kana]
    parts = _syllables(kana)
    text = ""
    lengthened = False
    for i, part in enumerate(parts):
        following = parts[i + 1] if i + 1 < len(parts) else ""
        if part == "ー":
            continue
        if part == "ッ":
            text += "t" if following.startswith("ch") else following[:1]
            continue
        if part == "ン":
            text += "m" if following[:1] in ("b", "m", "p") else "n"
            continue
        # A second o/u right after an o or u syllable is a long vowel, dropped once.
        if (
            not lengthened
            and part in ("u", "o")
            and text.endswith(("o", "u"))
            and not (part == "o" and text.endswith("u"))
        ):
            lengthened = True
            continue
        lengthened = False
        text += part
    return text.capitalize()
