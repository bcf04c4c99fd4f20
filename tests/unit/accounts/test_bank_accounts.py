"""Public-fund accounts: real Zengin banks and branches, kana holder names, one account per person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from publicmesh.accounts import (
    ACTIVE,
    REPLACED,
    WITHDRAWN,
    AccountError,
    account_history,
    account_of,
    bank_name,
    branch_name,
    ensure_schema,
    holder_matches,
    masked,
    register_account,
    search_banks,
    search_branches,
    to_holder_kana,
    validate_account,
    withdraw_account,
    yucho_to_zengin,
)

ALICE = "A" * 21 + "x"
BOB = "B" * 21 + "y"
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store_name():
    return "accounts"


@pytest.fixture
def engine(engine):
    """A fresh accounts store on each backend (the root conftest's engine) with its tables."""
    return ensure_schema(engine)


def refused(field: str, *args) -> AccountError:
    with pytest.raises(AccountError) as error:
        validate_account(*args)
    assert error.value.field == field and error.value.message_ja and error.value.message_en
    return error.value


def test_real_bank_and_branch():
    assert bank_name("0001") == "みずほ銀行" and branch_name("0001", "100") == "本店"
    assert branch_name("0001", "001") == "東京営業部"
    account = validate_account("0001", "100", "ordinary", "1234567", "ヤマダ タロウ")
    assert (account.bank_name, account.branch_name, account.type_code) == ("みずほ銀行", "本店", "1")
    assert masked(account) == "みずほ銀行 本店 普通 ****567"
    # Full-width digits, a short number and a Japanese type label, as typed on a phone.
    typed = validate_account("０００１", "１００", "当座", "４５６７", "やまだ たろう")
    assert (typed.account_number, typed.account_type, typed.holder_kana) == ("0004567", "current", "ﾔﾏﾀﾞ ﾀﾛｳ")
    assert bank_name("0005") == "三菱UFJ銀行" and bank_name("1001") == "北海道信用金庫"


def test_wrong_codes_and_numbers_are_refused():
    assert "みずほ銀行" in refused("branch", "0001", "999", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ").message_ja
    refused("branch", "0001", "10", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")
    refused("bank", "0002", "100", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")  # no bank 0002 in the list
    refused("bank", "1", "100", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")
    refused("account_type", "0001", "100", "fixed", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")
    for number in ("12345678", "12-4567", "abc", "0000000", ""):
        refused("account_number", "0001", "100", "ordinary", number, "ﾔﾏﾀﾞ ﾀﾛｳ")
    for holder in ("山田太郎", "", "ヤマダ" * 11):
        refused("holder", "0001", "100", "ordinary", "1234567", holder)


def test_yucho():
    branch, kind, number = yucho_to_zengin("12340", "12345671")  # a 総合口座 passbook
    assert (branch, kind, number) == ("238", "ordinary", "1234567")
    account = validate_account("9900", branch, kind, number, "ﾔﾏﾀﾞ ﾀﾛｳ")
    assert masked(account) == "ゆうちょ銀行 二三八店 普通 ****567"
    assert yucho_to_zengin("00120-5", "123456") == ("019", "current", "0123456")  # a 振替口座
    refused("account_type", "9900", "238", "current", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")
    refused("branch", "9900", "230", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ")
    with pytest.raises(ValueError):
        yucho_to_zengin("12340", "12345670")


def test_holder_kana_normalization_and_matching():
    for typed in ("ヤマダ　タロウ", "やまだ たろう", "ﾔﾏﾀﾞ ﾀﾛｳ", "ﾔﾏﾀﾞﾀﾛｳ", " ヤマダタロウ "):
        assert holder_matches(typed, "ヤマダ", "タロウ"), typed
    assert to_holder_kana("きゃろる・じょーんず") == "ｷﾔﾛﾙ ｼﾞﾖ-ﾝｽﾞ"  # banks use large kana and a hyphen
    assert holder_matches("ｷﾔﾛﾙ ｼﾞﾖ-ﾝｽﾞ", "キャロル", "ジョーンズ")
    assert holder_matches("ｲﾄｳ ｵﾘ", "イトウ", "ヲリ")  # banks read ｦ as ｵ
    assert holder_matches("ｳﾞｲｸﾄﾙ", "", "ヴィクトル")
    assert not holder_matches("ﾔﾏﾀﾞ ｼﾞﾛｳ", "ヤマダ", "タロウ")
    assert not holder_matches("ﾔﾏﾀ ﾀﾛｳ", "ヤマダ", "タロウ")  # a voicing mark is not ignorable
    assert not holder_matches("山田太郎", "ヤマダ", "タロウ")


def test_search_for_forms():
    assert [b.code for b in search_banks("みずほ")] == ["0001", "0289"]
    assert "0116" in [b.code for b in search_banks("ほっかいどう")]  # small っ matches the list's large ツ
    assert search_banks("0001")[0].name == "みずほ銀行" and search_banks("0001")[0].kana_half == "ﾐｽﾞﾎ"
    assert search_banks("ゆうちょ")[0].code == "9900"
    assert search_banks("") == []
    assert [b.code for b in search_branches("0001", "ほんてん")] == ["100"]
    assert search_branches("0001", "10")[0].code.startswith("10")


@pytest.mark.storage
def test_register_one_account_per_person(engine):
    with pytest.raises(AccountError) as mismatch:
        register_account(
            engine, ALICE, validate_account("0001", "100", "ordinary", "1234567", "ﾔﾏﾀﾞ ｼﾞﾛｳ"), "ヤマダ", "タロウ"
        )
    assert mismatch.value.field == "holder" and mismatch.value.message_ja == "口座名義がご本人の氏名と一致しません"
    assert account_of(engine, ALICE) is None

    first = register_account(
        engine, ALICE, validate_account("0001", "100", "普通", "1234567", "やまだたろう"), "ヤマダ", "タロウ", now=T0
    )
    assert first.holder_kana == "ﾔﾏﾀﾞ ﾀﾛｳ" and first.status == ACTIVE and first.registered_at == T0
    again = register_account(
        engine,
        ALICE,
        validate_account("0001", "100", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        "ヤマダ",
        "タロウ",
        now=T0 + timedelta(days=1),
    )
    assert again == first  # the same account again changes nothing

    second = register_account(
        engine,
        ALICE,
        validate_account("9900", "238", "ordinary", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ"),
        "ヤマダ",
        "タロウ",
        now=T0 + timedelta(days=2),
    )
    assert account_of(engine, ALICE) == second and masked(second) == "ゆうちょ銀行 二三八店 普通 ****567"
    history = account_history(engine, ALICE)
    assert [(a.bank_code, a.status) for a in history] == [("0001", REPLACED), ("9900", ACTIVE)]
    assert history[0].ended_at == T0 + timedelta(days=2)

    register_account(engine, BOB, validate_account("0001", "100", "ordinary", "1234567", "ｽｽﾞｷ ﾊﾅｺ"), "スズキ", "ハナコ")
    assert account_of(engine, ALICE) == second  # Bob's registration touches only Bob's
    assert withdraw_account(engine, ALICE) and account_of(engine, ALICE) is None
    assert not withdraw_account(engine, ALICE)
    assert [a.status for a in account_history(engine, ALICE)] == [REPLACED, WITHDRAWN]
