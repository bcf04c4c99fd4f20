"""Checking a public-fund receiving account (公金受取口座) against the Zengin code list before it is stored."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from publicmesh.accounts.banks import YUCHO, bank_info, branch_info
from publicmesh.accounts.kana import MAX_HOLDER_LENGTH, to_holder_kana

# Account type → (Zengin 預金種目 code, Japanese label). Codes are what payout files carry.
ACCOUNT_TYPES: dict[str, tuple[str, str]] = {
    "ordinary": ("1", "普通"),
    "current": ("2", "当座"),
    "savings": ("4", "貯蓄"),
}
_TYPE_ALIASES = {alias: name for name, (code, label) in ACCOUNT_TYPES.items() for alias in (name, code, label)}


class AccountError(ValueError):
    """One field of an account form is wrong; the messages are for the person, in both languages."""

    def __init__(self, field: str, message_ja: str, message_en: str) -> None:
        super().__init__(f"{field}: {message_en}")
        self.field = field
        self.message_ja = message_ja
        self.message_en = message_en

    def message(self, lang: str = "ja") -> str:
        return self.message_en if lang == "en" else self.message_ja


@dataclass(frozen=True, slots=True)
class ValidatedAccount:
    """An account whose bank, branch, type and number exist and are well-formed, with its holder in bank kana."""

    bank_code: str
    bank_name: str
    branch_code: str
    branch_name: str
    account_type: str  # ordinary | current | savings
    account_number: str  # 7 digits
    holder_kana: str  # half-width, e.g. ﾔﾏﾀﾞ ﾀﾛｳ

    @property
    def type_code(self) -> str:
        return ACCOUNT_TYPES[self.account_type][0]

    @property
    def type_label(self) -> str:
        return ACCOUNT_TYPES[self.account_type][1]


def _digits(value: str | int) -> str:
    return unicodedata.normalize("NFKC", str(value)).strip()  # full-width digits from phone keyboards


def validate_account(
    bank_code: str,
    branch_code: str,
    account_type: str,
    account_number: str | int,
    holder_kana: str,
) -> ValidatedAccount:
    """The account if the Zengin list knows its bank and branch and its fields are well-formed; AccountError if not."""
    bank_code = _digits(bank_code)
    if len(bank_code) != 4 or not bank_code.isdigit():
        raise AccountError("bank", "金融機関コードは4桁の数字で入力してください", "The bank code is 4 digits")
    bank = bank_info(bank_code)
    if bank is None:
        raise AccountError("bank", "この金融機関コードの金融機関はありません", "No bank has this code")

    branch_code = _digits(branch_code)
    if len(branch_code) != 3 or not branch_code.isdigit():
        raise AccountError("branch", "支店コードは3桁の数字で入力してください", "The branch code is 3 digits")
    branch = branch_info(bank_code, branch_code)
    if branch is None:
        raise AccountError(
            "branch", f"{bank.name}にこの支店コードの支店はありません", f"{bank.name} has no branch with this code"
        )

    kind = _TYPE_ALIASES.get(_digits(account_type).lower())
    if kind is None:
        raise AccountError(
            "account_type",
            "預金種目は普通・当座・貯蓄のいずれかです",
            "The account type is ordinary, current or savings",
        )
    if bank_code == YUCHO:
        # ゆうちょ's Zengin branch says the kind: …8 総合口座 (ordinary), …9 振替口座 (current).
        expected = "ordinary" if branch_code.endswith("8") else "current"
        if kind != expected:
            raise AccountError(
                "account_type",
                f"ゆうちょ銀行{branch.name}の口座は{ACCOUNT_TYPES[expected][1]}預金です",
                f"Accounts at Japan Post Bank branch {branch_code} are {expected} accounts",
            )

    number = _digits(account_number)
    if not number.isdigit() or not 1 <= len(number) <= 7 or int(number) == 0:
        raise AccountError(
            "account_number", "口座番号は7桁以内の数字で入力してください", "The account number is up to 7 digits"
        )

    try:
        holder = to_holder_kana(holder_kana)
    except ValueError:
        raise AccountError(
            "holder",
            f"口座名義はカナ{MAX_HOLDER_LENGTH}文字以内で入力してください",
            f"Enter the account holder name in kana, up to {MAX_HOLDER_LENGTH} characters",
        ) from None
    return ValidatedAccount(bank_code, bank.name, branch_code, branch.name, kind, number.zfill(7), holder)
