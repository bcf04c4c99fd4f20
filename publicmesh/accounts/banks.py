"""Banks and branches from the real Zengin code list (zengin_code), with display names and search for forms."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import NamedTuple

import jaconv

from publicmesh.accounts.kana import SMALL_TO_LARGE, to_bank_kana

YUCHO = "9900"  # ゆうちょ銀行: branch codes are derived from the passbook's 記号 (see yucho_to_zengin)
# Short names in the list that already say what they are, and foreign banks whose name already says "bank".
_TYPE_SUFFIXES = {"信金": "信用金庫", "信組": "信用組合", "労金": "労働金庫"}
_NO_BANK_SUFFIX = ("バンク", "ワイズ・ペイメンツ")
_BRANCH_ENDINGS = ("店", "部", "所", "センター", "プラザ", "支社")


class BankInfo(NamedTuple):
    """A financial institution as a form shows it."""

    code: str
    name: str  # display name, e.g. みずほ銀行
    kana: str  # full-width reading as in the list, large kana (ミズホ)
    kana_half: str  # half-width, as Zengin transfer files carry it (ﾐｽﾞﾎ)


class BranchInfo(NamedTuple):
    """A branch as a form shows it."""

    code: str
    name: str  # display name, e.g. 本店, 丸の内中央支店, 〇一八店
    kana: str
    kana_half: str


@lru_cache(maxsize=1)
def _banks() -> dict:
    import zengin_code  # noqa: PLC0415 — about 150 ms to load every bank and branch: only when a form needs them

    return dict(zengin_code.Bank.all)


def _ascii(text: str) -> str:
    return jaconv.z2h(text, kana=False, ascii=True, digit=True)  # the list spells 三菱ＵＦＪ in full width


def _bank_display(code: str, name: str) -> str:
    name = _ascii(name)
    for short, full in _TYPE_SUFFIXES.items():
        if name.endswith(short):
            return name[: -len(short)] + full
    if (int(code) < 1000 or code == YUCHO) and not any(word in name for word in _NO_BANK_SUFFIX):
        return name + "銀行"  # the list drops 銀行 from every bank's name
    return name


def _branch_display(bank_code: str, name: str) -> str:
    name = _ascii(name)
    if bank_code == YUCHO:
        return name + "店"  # ゆうちょ's numbered branches are named 〇一八店 and so on
    return name if name.endswith(_BRANCH_ENDINGS) else name + "支店"


def _half(kana: str) -> str:
    return to_bank_kana(unicodedata.normalize("NFKC", kana))


def bank_info(code: str) -> BankInfo | None:
    bank = _banks().get(code)
    if bank is None:
        return None
    return BankInfo(bank.code, _bank_display(bank.code, bank.name), bank.kana, _half(bank.kana))


def branch_info(bank_code: str, branch_code: str) -> BranchInfo | None:
    bank = _banks().get(bank_code)
    branch = bank.branches.get(branch_code) if bank is not None else None
    if branch is None:
        return None
    return BranchInfo(branch.code, _branch_display(bank_code, branch.name), branch.kana, _half(branch.kana))


def bank_name(code: str) -> str | None:
    """The display name of a bank code (0001 → みずほ銀行), or None when the list has no such bank."""
    info = bank_info(code)
    return info.name if info else None


def branch_name(bank_code: str, branch_code: str) -> str | None:
    """The display name of a branch of that bank (0001/100 → 本店), or None when it has no such branch."""
    info = branch_info(bank_code, branch_code)
    return info.name if info else None


def search_key(text: str) -> str:
    """What a search compares: katakana, large kana, one long-vowel sign, lower-case latin."""
    text = jaconv.hira2kata(unicodedata.normalize("NFKC", text or "").strip())
    return text.translate(SMALL_TO_LARGE).replace("ー", "-").lower()


@lru_cache(maxsize=1)
def _bank_keys() -> list[tuple[str, tuple[str, ...]]]:
    return [
        (code, (search_key(b.name), search_key(_bank_display(code, b.name)), search_key(b.kana), b.roma.lower()))
        for code, b in _banks().items()
    ]


def search_banks(prefix: str, limit: int = 20) -> list[BankInfo]:
    """Banks whose code, name, reading (kana or hiragana, small kana or not) or romaji starts with ``prefix``."""
    key = search_key(prefix)
    if not key:
        return []
    found = [code for code, keys in _bank_keys() if code.startswith(key) or any(k.startswith(key) for k in keys)]
    return [info for code in found[:limit] if (info := bank_info(code)) is not None]


def search_branches(bank_code: str, prefix: str, limit: int = 20) -> list[BranchInfo]:
    """Branches of one bank whose code, name or reading starts with ``prefix``."""
    bank = _banks().get(bank_code)
    key = search_key(prefix)
    if bank is None or not key:
        return []
    found: list[BranchInfo] = []
    for code, branch in bank.branches.items():
        if code.startswith(key) or any(
            k.startswith(key) for k in (search_key(branch.name), search_key(branch.kana), branch.roma.lower())
        ):
            info = branch_info(bank_code, code)
            if info is not None:
                found.append(info)
            if len(found) == limit:
                break
    return found


def yucho_to_zengin(kigo: str, bango: str) -> tuple[str, str, str]:
    """ゆうちょ's passbook 記号・番号 as Zengin (branch code, account type, 7-digit number).

    総合口座 (記号 1xxxx, 番号 ending in 1): branch = 2nd–3rd digits of 記号 + "8", ordinary, 番号 without its
    last digit. 振替口座 (記号 0xxxx): branch = 2nd–3rd digits + "9", current, 番号 zero-padded.
    """
    kigo = unicodedata.normalize("NFKC", kigo or "").strip().split("-")[0]
    bango = unicodedata.normalize("NFKC", bango or "").strip()
    if len(kigo) != 5 or not kigo.isdigit() or kigo[0] not in "01":
        raise ValueError("記号 is five digits starting with 0 or 1")
    if not bango.isdigit():
        raise ValueError("番号 is digits")
    if kigo[0] == "1":
        if len(bango) > 8 or not bango.endswith("1"):
            raise ValueError("a 総合口座 番号 has up to 8 digits and ends in 1")
        return kigo[1:3] + "8", "ordinary", bango[:-1].zfill(7)
    if len(bango) > 7:
        raise ValueError("a 振替口座 番号 has up to 7 digits")
    return kigo[1:3] + "9", "current", bango.zfill(7)
