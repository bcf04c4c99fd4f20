"""The Zengin 総合振込 file: 120-byte records, exact round trips, totals to the yen, clear refusals."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from publicmesh.payouts import Remitter, Transfer, TransferFile, ZenginError, parse, summary, transfer_to, write
from publicmesh.payouts.zengin import DATA, END, HEADER, TRAILER, zengin_text

PAY_DAY = date(2026, 12, 10)
CITY = Remitter(
    client_code="1234567890",
    name_kana="ﾁﾖﾀﾞｸ ﾌｸｼﾌﾞ",
    bank_code="0001",
    bank_name_kana="ﾐｽﾞﾎ",
    branch_code="001",
    branch_name_kana="ﾄｳｷﾖｳ",
    account_type=2,
    account_number="1234567",
)


def payee(amount: int = 50_000, holder: str = "ﾔﾏﾀﾞ ﾀﾛｳ", customer_code: str = "") -> Transfer:
    return Transfer(
        bank_code="0005",
        bank_name_kana="ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ",
        branch_code="135",
        branch_name_kana="ｼﾌﾞﾔ",
        account_type=1,
        account_number="7654321",
        holder_kana=holder,
        amount_yen=amount,
        customer_code=customer_code,
    )


def one_file(*transfers: Transfer) -> TransferFile:
    return TransferFile(CITY, PAY_DAY, transfers or (payee(),))


def records(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def refused(match: str, data: bytes) -> ZenginError:
    with pytest.raises(ZenginError, match=match) as caught:
        parse(data, today=PAY_DAY)
    return caught.value


# ---------------------------------------------------------------------------------------------------- layout


@pytest.mark.parametrize("layout", [HEADER, DATA, TRAILER, END], ids=["header", "data", "trailer", "end"])
def test_each_layout_adds_up_to_120_bytes(layout):
    assert sum(field.width for field in layout) == 120


def test_every_record_is_120_bytes_with_crlf_or_without():
    file = one_file(payee(1), payee(2, "ｽｽﾞｷ ﾊﾅｺ"), payee(3, "ABC ｼﾖｳｼﾞ(ｶ"))
    with_crlf = write(file)
    lines = records(with_crlf)
    assert [len(r) for r in lines] == [120] * 6
    assert [r[:1] for r in lines] == [b"1", b"2", b"2", b"2", b"8", b"9"]
    bare = write(file, newline=b"")
    assert len(bare) == 6 * 120 and bare == b"".join(lines)
    assert parse(bare, today=PAY_DAY) == parse(with_crlf, today=PAY_DAY) == file


def test_golden_header_record():
    header = records(write(one_file()))[0]
    expected = (
        "1"  # データ区分: header
        + "21"  # 種別コード: 総合振込
        + "0"  # コード区分: JIS
        + "1234567890"  # 振込依頼人コード, N(10)
        + "ﾁﾖﾀﾞｸ ﾌｸｼﾌﾞ".ljust(40)  # 振込依頼人名, C(40): 11 characters (ﾞ and ﾌﾞ's mark count) + 29 spaces
        + "1210"  # 振込指定日 MMDD: 10 December
        + "0001"  # 仕向銀行番号
        + "ﾐｽﾞﾎ".ljust(15)  # 仕向銀行名, C(15)
        + "001"  # 仕向支店番号
        + "ﾄｳｷﾖｳ".ljust(15)  # 仕向支店名, C(15)
        + "2"  # 預金種目: 当座
        + "1234567"  # 口座番号, N(7)
        + " " * 17  # ダミー
    )
    assert len(expected) == 120
    assert header == expected.encode("cp932")
    assert header[14:19] == bytes([0xC1, 0xD6, 0xC0, 0xDE, 0xB8])  # ﾁﾖﾀﾞｸ as JIS X 0201 single bytes


def test_data_trailer_and_end_records_field_by_field():
    lines = records(write(one_file(payee(50_000, customer_code="123"), payee(7, customer_code="APP-7"))))
    data = lines[1].decode("cp932")
    assert data[0] == "2" and data[1:5] == "0005" and data[5:20] == "ﾐﾂﾋﾞｼﾕ-ｴﾌｼﾞｴｲ ".ljust(15)
    assert data[20:23] == "135" and data[38:42] == "0000" and data[42] == "1" and data[43:50] == "7654321"
    assert data[50:80] == "ﾔﾏﾀﾞ ﾀﾛｳ".ljust(30)
    assert data[80:90] == "0000050000"  # 振込金額, zero-padded
    assert data[90] == "0"  # 新規コード
    assert data[91:111] == "0" * 17 + "123"  # 顧客コード1 + 2, numeric
    assert data[111:113] == "7 "  # 振込指定区分 電信, 識別表示 blank
    edi = lines[2].decode("cp932")
    assert edi[91:111] == "APP-7".ljust(20) and edi[112] == "Y"  # a code with letters travels as EDI情報
    assert lines[3] == ("8" + "000002" + "000000050007").encode().ljust(120)
    assert lines[4] == b"9" + b" " * 119


# ---------------------------------------------------------------------------------------------------- round trips

_KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン"
_VOICED = "ガギグゲゴザジズゼゾダヂヅデドバビブベボパピプペポヴ"
_SMALL = "ァィゥェォャュョッ"
names = st.text(alphabet=_KANA + _VOICED + _SMALL + " ー", min_size=1, max_size=12).filter(str.strip)
hiragana = st.text(alphabet="あいうえおかがきぎしじたっちゃゅょんぱ ", min_size=1, max_size=14).filter(str.strip)
latin = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcxyz0123456789 ().-/", min_size=1, max_size=20).filter(
    lambda s: any(c.isalnum() for c in s)
)
codes = st.one_of(
    st.just(""),
    st.integers(1, 10**20 - 1).map(str),
    st.text(alphabet="0123456789ABCDEFabcdef-", min_size=1, max_size=20),
)
transfers = st.builds(
    Transfer,
    bank_code=st.from_regex(r"[0-9]{4}", fullmatch=True),
    bank_name_kana=st.one_of(names, hiragana, st.just("")),
    branch_code=st.from_regex(r"[0-9]{3}", fullmatch=True),
    branch_name_kana=st.one_of(names, latin),
    account_type=st.sampled_from([1, 2, 4, 9]),
    account_number=st.from_regex(r"[0-9]{1,7}", fullmatch=True),
    holder_kana=st.one_of(names, hiragana, latin),
    amount_yen=st.integers(1, 9_999_999_999),
    customer_code=codes,
)
remitters = st.builds(
    Remitter,
    client_code=st.from_regex(r"[0-9]{1,10}", fullmatch=True),
    # long enough to be cut at 40, often between a kana and its voicing mark
    name_kana=st.one_of(
        names, hiragana, st.text(alphabet=_KANA + _VOICED + " ", min_size=20, max_size=45).filter(str.strip)
    ),
    bank_code=st.from_regex(r"[0-9]{4}", fullmatch=True),
    bank_name_kana=names,
    branch_code=st.from_regex(r"[0-9]{3}", fullmatch=True),
    branch_name_kana=names,
    account_type=st.sampled_from([1, 2, 9]),
    account_number=st.from_regex(r"[0-9]{1,7}", fullmatch=True),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    remitters,
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    st.lists(transfers, min_size=1, max_size=8),
    st.sampled_from([b"\r\n", b""]),
)
def test_write_then_parse_gives_the_same_file(remitter, day, items, newline):
    file = TransferFile(remitter, day, tuple(items))
    data = write(file, newline=newline)
    assert len(data) == (len(items) + 3) * (120 + len(newline))
    assert parse(data, today=day) == file


def test_text_becomes_zengin_kana_once_and_for_all():
    assert zengin_text("しょうじ　きょうこ", 30, "f") == "ｼﾖｳｼﾞ ｷﾖｳｺ"  # small kana made large
    assert zengin_text("ｼｮｳｼﾞ", 30, "f") == "ｼﾖｳｼﾞ"
    assert zengin_text("ＡＢＣ商事"[:3] + "(カ", 30, "f") == "ABC(ｶ"
    assert zengin_text("¥「ー」", 30, "f") == "¥｢ｰ｣"
    assert zengin_text(zengin_text("ヴァイオリン", 30, "f"), 30, "f") == "ｳﾞｱｲｵﾘﾝ"
    # cut to the width, never leaving a kana whose voicing mark fell outside
    assert zengin_text("ダダダ", 5, "f") == "ﾀﾞﾀﾞ"
    assert zengin_text("ダダダ", 4, "f") == "ﾀﾞﾀﾞ"
    assert zengin_text("アイ ダ", 4, "f") == "ｱｲ"
    assert zengin_text("ｱﾞ", 4, "f") == "ｱﾞ"  # a mark no kana takes stays a mark, not a combining character


def test_the_yen_sign_is_byte_5c_as_jis_x_0201_has_it():
    file = TransferFile(replace(CITY, name_kana="ｼﾔｶｲﾌｸｼ¥ｷﾝ"), PAY_DAY, (payee(),))
    data = write(file)
    assert b"\\" in records(data)[0] and parse(data, today=PAY_DAY).remitter.name_kana == "ｼﾔｶｲﾌｸｼ¥ｷﾝ"


def test_customer_codes_keep_every_character():
    for code in ("", "1", "12345678901234567890", "0042", "APP-0001", "0F3A9C"):
        back = parse(write(one_file(payee(customer_code=code))), today=PAY_DAY).transfers[0].customer_code
        assert back == code.upper()


# ---------------------------------------------------------------------------------------------------- totals


def test_totals_reconcile_to_the_yen_for_ten_thousand_transfers():
    rng = random.Random(20261210)
    # Mostly everyday sums, some at the 10-digit limit: the total still fits 合計金額's 12 digits.
    amounts = [rng.randint(1, 9_999_999_999) if i % 500 == 0 else rng.randint(1, 99_999_999) for i in range(10_000)]
    file = one_file(*(payee(amount, customer_code=str(i + 1)) for i, amount in enumerate(amounts)))
    assert file.total_count == 10_000 and file.total_yen == sum(amounts)
    data = write(file, newline=b"")
    trailer = data[-240:-120]
    assert trailer[:1] == b"8" and int(trailer[1:7]) == 10_000 and int(trailer[7:19]) == sum(amounts)
    back = parse(data, today=PAY_DAY)
    assert [t.amount_yen for t in back.transfers] == amounts
    assert back.total_yen == sum(amounts)
    assert [t.customer_code for t in back.transfers] == [str(i + 1) for i in range(10_000)]


def test_a_total_beyond_twelve_digits_is_refused():
    with pytest.raises(ZenginError, match="合計金額"):
        one_file(*[payee(9_999_999_999)] * 101)


def test_summary_is_what_a_person_checks_before_sending():
    assert summary(one_file(payee(1_000), payee(2_500))) == {
        "count": 2,
        "total_yen": 3_500,
        "transfer_date": "2026-12-10",
        "remitter": {"client_code": "1234567890", "name_kana": "ﾁﾖﾀﾞｸ ﾌｸｼﾌﾞ"},
    }


# ---------------------------------------------------------------------------------------------------- refusals


def test_a_wrong_trailer_total_is_refused_at_the_trailer():
    lines = records(write(one_file(payee(1_000), payee(2_000))))
    lines[3] = ("8" + "000002" + "000000003001").encode().ljust(120)
    error = refused("合計金額 says ¥3,001, the transfers add up to ¥3,000", b"\r\n".join(lines))
    assert error.line == 4


def test_a_wrong_trailer_count_is_refused():
    lines = records(write(one_file(payee(1_000), payee(2_000))))
    lines[3] = ("8" + "000003" + "000000003000").encode().ljust(120)
    assert refused("合計件数 says 3 transfers, the file has 2", b"\r\n".join(lines)).line == 4


def test_a_119_byte_record_is_refused():
    lines = records(write(one_file()))
    lines[1] = lines[1][:119]
    assert refused("the record is 119 bytes; Zengin records are 120", b"\r\n".join(lines)).line == 2
    bare = b"".join(lines)
    assert refused("not a whole number of 120-byte records", bare).line == 4


def test_a_data_record_after_the_trailer_is_refused():
    lines = records(write(one_file()))
    lines.insert(3, lines[1])
    assert refused(r"a data record \(2\) after the trailer \(8\)", b"\r\n".join(lines)).line == 4


def test_a_float_amount_is_refused():
    with pytest.raises(ZenginError, match="amount_yen must be an int of yen, got float 1000.0"):
        payee(1000.0)
    for wrong in (0, -5, 10_000_000_000, True, "1000"):
        with pytest.raises(ZenginError, match="amount_yen"):
            payee(wrong)


def test_a_name_with_a_kanji_is_refused():
    with pytest.raises(ZenginError, match="holder_kana '山田 ﾀﾛｳ': not a kana name"):
        payee(holder="山田 ﾀﾛｳ")
    with pytest.raises(ZenginError, match="name_kana '千代田区' has characters a Zengin file cannot carry"):
        Remitter("1", "千代田区", "0001", "ﾐｽﾞﾎ", "001", "ﾄｳｷﾖｳ", 1, "1")


def test_a_kanji_inside_a_file_is_refused_at_its_record():
    lines = records(write(one_file()))
    lines[1] = lines[1][:50] + "山田".encode("cp932") + lines[1][54:]
    assert len(lines[1]) == 120
    assert refused("double-byte", b"\r\n".join(lines)).line == 2


def test_a_holder_name_longer_than_the_field_is_refused_not_cut():
    with pytest.raises(ZenginError, match="longer than 30"):
        payee(holder="ｱ" * 31)


@pytest.mark.parametrize(
    "field, value",
    [
        ("bank_code", "001"),
        ("bank_code", "00O1"),
        ("branch_code", "1234"),
        ("account_number", "12345678"),
        ("account_type", 3),
        ("account_type", "1"),
    ],
)
def test_malformed_codes_are_refused(field, value):
    values = dict(
        bank_code="0005",
        bank_name_kana="",
        branch_code="135",
        branch_name_kana="",
        account_type=1,
        account_number="1",
        holder_kana="ﾔﾏﾀﾞ",
        amount_yen=1,
    )
    with pytest.raises(ZenginError, match=field):
        Transfer(**{**values, field: value})


def test_the_record_order_is_enforced():
    lines = records(write(one_file()))
    refused(r"first record must be the header", b"\r\n".join(lines[1:]))
    assert refused(r"without a trailer", b"\r\n".join(lines[:2])).line == 2
    assert refused(r"without an end record", b"\r\n".join(lines[:3])).line == 3
    assert refused(r"after the end record", b"\r\n".join(lines + [lines[3]])).line == 5
    assert refused(r"second header", b"\r\n".join(lines[:1] + lines)).line == 2
    assert refused(r"LF alone", b"\n".join(lines)).line is None


def test_other_kinds_of_file_are_refused():
    header = records(write(one_file()))
    salary = [header[0][:1] + b"11" + header[0][3:]] + header[1:]
    assert refused("種別コード 11 is not 総合振込", b"\r\n".join(salary)).line == 1
    digits = [header[0]] + [header[1][:80] + b"00000OOOOO" + header[1][90:]] + header[2:]
    assert refused("振込金額 must be 10 digits", b"\r\n".join(digits)).line == 2


def test_the_year_is_the_one_nearest_the_day_the_file_is_read():
    data = write(TransferFile(CITY, date(2027, 1, 5), (payee(),)))
    assert parse(data, today=date(2026, 12, 28)).transfer_date == date(2027, 1, 5)
    assert parse(data, today=date(2027, 2, 1)).transfer_date == date(2027, 1, 5)
    leap = write(TransferFile(CITY, date(2028, 2, 29), (payee(),)))
    assert parse(leap, today=date(2028, 2, 20)).transfer_date == date(2028, 2, 29)


def test_a_file_needs_a_date_and_transfers():
    with pytest.raises(ZenginError, match="at least one transfer"):
        TransferFile(CITY, PAY_DAY, ())
    with pytest.raises(ZenginError, match="transfer_date must be a date"):
        TransferFile(CITY, "2026-12-10", (payee(),))
    with pytest.raises(ValueError, match="newline"):
        write(one_file(), newline=b"\n")


def test_a_transfer_to_a_registered_account_takes_the_banks_kana_from_the_zengin_list():
    account = SimpleNamespace(
        bank_code="0001", branch_code="001", type_code="1", account_number="0123456", holder_kana="ﾔﾏﾀﾞ ﾀﾛｳ"
    )
    transfer = transfer_to(account, 30_000, customer_code="A1")
    assert transfer.bank_name_kana == "ﾐｽﾞﾎ" and transfer.branch_name_kana
    assert (transfer.account_type, transfer.amount_yen, transfer.customer_code) == (1, 30_000, "A1")
