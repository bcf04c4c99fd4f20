"""Account holder names in half-width kana as Zengin files carry them, and matching them against a person's name."""

from __future__ import annotations

import re
import unicodedata

import jaconv

MAX_HOLDER_LENGTH = 30  # the 受取人名 field of a Zengin transfer record

# Characters Zengin accepts in a name: half-width katakana (large), voicing marks, A–Z, 0–9, space, ( ) . , - /
_ZENGIN = re.compile(r"^[ｦ-ﾝﾞﾟA-Z0-9 ().,\-/]+$")
_LONG_VOWELS = str.maketrans({c: "-" for c in "ー‐‑‒–—―−"})  # banks write the long vowel as a hyphen
_SEPARATORS = str.maketrans({c: " " for c in "・･、,　"})  # foreign names' middle dots become spaces
_OBSOLETE = str.maketrans("ヰヱ", "イエ")  # no half-width form; banks use イ and エ
SMALL_TO_LARGE = str.maketrans("ァィゥェォャュョッヮヵヶ", "アイウエオヤユヨツワカケ")  # bank files have no small kana


def to_halfwidth_kana(text: str) -> str:
    """Full-width katakana to half-width (半角カナ); ASCII and digits are left as they are."""
    return jaconv.z2h(text, kana=True, ascii=False, digit=False)


def to_bank_kana(text: str) -> str:
    """Half-width kana as 全銀 transfer files accept it: small kana enlarged, ASCII upper-cased."""
    full = jaconv.h2z(text, kana=True, ascii=False, digit=False).translate(SMALL_TO_LARGE)
    return to_halfwidth_kana(full).upper()


def to_holder_kana(text: str) -> str:
    """Full- or half-width katakana or hiragana → Zengin half-width kana (ﾔﾏﾀﾞ ﾀﾛｳ); ValueError when not kana."""
    # NFKC joins half-width voicing marks to their kana (ﾀﾞ → ダ) and narrows full-width latin and spaces,
    # so every input form reaches the same full-width katakana before it is narrowed once, consistently.
    text = jaconv.hira2kata(unicodedata.normalize("NFKC", text or ""))
    text = text.translate(_SEPARATORS).translate(_LONG_VOWELS).translate(_OBSOLETE)
    text = " ".join(text.upper().split())
    if not text:
        raise ValueError("empty name")
    half = to_bank_kana(text).replace("ｰ", "-")
    if not _ZENGIN.match(half):
        raise ValueError("not a kana name")
    if len(half) > MAX_HOLDER_LENGTH:
        raise ValueError(f"longer than {MAX_HOLDER_LENGTH} characters in half-width kana")
    return half


def _comparable(text: str) -> str:
    # Spaces are where people put them; banks treat ｦ as ｵ.
    return to_holder_kana(text).replace(" ", "").replace("ｦ", "ｵ")


def holder_matches(holder_kana: str, family_kana: str, given_kana: str) -> bool:
    """Whether an account holder name is the person's name (family then given), as banks compare names."""
    try:
        return _comparable(holder_kana) == _comparable(family_kana + given_kana)
    except ValueError:
        return False


def person_holder_kana(family_kana: str, given_kana: str) -> str:
    """The person's own name as the holder of their account: ﾔﾏﾀﾞ ﾀﾛｳ."""
    return " ".join(to_holder_kana(part) for part in (family_kana, given_kana) if part and part.strip())
