"""The 全銀協規定 総合振込 (general transfer) file a paying agency hands its bank to pay public funds into accounts.

Fixed 120-byte records in JIS X 0201 (Shift_JIS, one byte a character): a header (データ区分 1), one data record
(2) per transfer, a trailer (8) with the count and total, and an end record (9).
"""

from __future__ import annotations

import datetime
import re
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import jaconv

from publicmesh.accounts.banks import bank_info, branch_info
from publicmesh.accounts.kana import to_bank_kana, to_holder_kana

RECORD_LENGTH = 120
CRLF = b"\r\n"
KIND_TRANSFER = "21"  # 種別コード: 総合振込 (11/12 would be salary and bonus)
MAX_AMOUNT = 9_999_999_999  # 振込金額 N(10)
MAX_TOTAL = 999_999_999_999  # 合計金額 N(12)
MAX_COUNT = 999_999  # 合計件数 N(6)
MAX_CUSTOMER_CODE = 20  # 顧客コード1 + 2, or the EDI情報 that takes their place
REMITTER_ACCOUNT_TYPES = (1, 2, 9)  # 普通, 当座, その他
PAYEE_ACCOUNT_TYPES = (1, 2, 4, 9)  # 普通, 当座, 貯蓄, その他

# Zengin's character set: half-width katakana (large only), voicing marks, the long vowel, A–Z, 0–9, space and
# ( ) . , - / ¥ 「 」. Small kana are not in it; to_bank_kana enlarges them (ｬ → ﾔ) before this check.
_ALLOWED = re.compile(r"[ｦｱ-ﾝﾞﾟｰA-Z0-9 ().,\-/¥｢｣]*")
_VOICING = "ﾞﾟ"
_COMBINING = str.maketrans("\u3099\u309a", _VOICING)


class Field(NamedTuple):
    key: str
    name: str  # the name the 全銀協 layout gives the field
    width: int
    numeric: bool  # N: right-aligned, zero-padded; C: left-aligned, space-padded


def _n(key: str, name: str, width: int) -> Field:
    return Field(key, name, width, True)


def _c(key: str, name: str, width: int) -> Field:
    return Field(key, name, width, False)


HEADER = (
    _n("kind", "データ区分", 1),
    _n("type", "種別コード", 2),
    _n("code_set", "コード区分", 1),  # 0 JIS, 1 EBCDIC
    _n("client_code", "振込依頼人コード", 10),
    _c("name_kana", "振込依頼人名", 40),
    _n("date", "振込指定日", 4),  # MMDD
    _n("bank_code", "仕向銀行番号", 4),
    _c("bank_name_kana", "仕向銀行名", 15),
    _n("branch_code", "仕向支店番号", 3),
    _c("branch_name_kana", "仕向支店名", 15),
    _n("account_type", "預金種目(依頼人)", 1),
    _n("account_number", "口座番号(依頼人)", 7),
    _c("dummy", "ダミー", 17),
)
DATA = (
    _n("kind", "データ区分", 1),
    _n("bank_code", "被仕向銀行番号", 4),
    _c("bank_name_kana", "被仕向銀行名", 15),
    _n("branch_code", "被仕向支店番号", 3),
    _c("branch_name_kana", "被仕向支店名", 15),
    _c("clearing_house", "手形交換所番号", 4),  # N(4), unused: written 0000, read whatever is there
    _n("account_type", "預金種目", 1),
    _n("account_number", "口座番号", 7),
    _c("holder_kana", "受取人名", 30),
    _n("amount", "振込金額", 10),
    _c("new_code", "新規コード", 1),  # N(1): 0 other, 1 first transfer, 2 changed; written 0, read leniently
    _c("customer_code", "顧客コード1・2 / EDI情報", 20),  # two N(10), or one C(20) when 識別表示 is Y
    _c("transfer_method", "振込指定区分", 1),  # 7 電信, 8 文書
    _c("edi_flag", "識別表示", 1),  # Y: the customer-code area is EDI情報
    _c("dummy", "ダミー", 7),
)
TRAILER = (
    _n("kind", "データ区分", 1),
    _n("count", "合計件数", 6),
    _n("total", "合計金額", 12),
    _c("dummy", "ダミー", 101),
)
END = (_n("kind", "データ区分", 1), _c("dummy", "ダミー", 119))

for _layout in (HEADER, DATA, TRAILER, END):
    if sum(field.width for field in _layout) != RECORD_LENGTH:
        raise AssertionError(f"a Zengin layout is {sum(f.width for f in _layout)} bytes, not {RECORD_LENGTH}")


class ZenginError(ValueError):
    """A transfer file, or a value meant for one, that Zengin does not allow; ``line`` is the record, from 1."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(f"record {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


# ---------------------------------------------------------------------------------------------------- values


def zengin_text(value: str, width: int, field: str) -> str:
    """Any kana, hiragana or latin text → Zengin half-width kana, cut to ``width`` without orphaning ﾞ/ﾟ."""
    if not isinstance(value, str):
        raise ZenginError(None, f"{field} must be text, got {type(value).__name__}")
    # NFKC joins half-width voicing marks to their kana and narrows full-width latin, so every form of the same
    # name reaches the same half-width text (and converting it again changes nothing). NFKC makes a mark that no
    # kana takes (ｱﾞ) a combining character; it goes back to ﾞ.
    text = unicodedata.normalize("NFKC", value).translate(_COMBINING).replace("\\", "¥")
    text = to_bank_kana(jaconv.hira2kata(text))
    text = " ".join(text.split())
    if not _ALLOWED.fullmatch(text):
        bad = "".join(dict.fromkeys(ch for ch in text if not _ALLOWED.fullmatch(ch)))
        raise ZenginError(None, f"{field} {value!r} has characters a Zengin file cannot carry: {bad!r}")
    if len(text) > width:
        cut = text[:width]
        if text[width] in _VOICING:  # ｶﾞ cut after ｶ would read as ｶ: drop the kana with its mark
            cut = cut[:-1]
        text = cut.rstrip()
    return text


def holder_text(value: str, field: str = "holder_kana") -> str:
    """An account holder's name as the receiving bank checks it: never cut, refused when too long or not kana."""
    if not isinstance(value, str):
        raise ZenginError(None, f"{field} must be text, got {type(value).__name__}")
    try:
        return to_holder_kana(value)
    except ValueError as exc:
        raise ZenginError(None, f"{field} {value!r}: {exc}") from exc


def _digits(value: str, width: int, field: str, *, exact: bool = False) -> str:
    if not isinstance(value, str) or not value.isascii() or not value.isdigit():
        raise ZenginError(None, f"{field} must be a string of digits, got {value!r}")
    if len(value) > width or (exact and len(value) != width):
        raise ZenginError(None, f"{field} must be {'exactly' if exact else 'at most'} {width} digits, got {value!r}")
    return value.zfill(width)


def _account_type(value: int, allowed: tuple[int, ...], field: str = "account_type") -> int:
    if type(value) is not int or value not in allowed:
        raise ZenginError(None, f"{field} must be one of {allowed} (1 普通, 2 当座, 4 貯蓄, 9 その他), got {value!r}")
    return value


def _amount(value: int) -> int:
    if type(value) is not int:  # no floats, Decimals or bools: a payout is a whole number of yen
        raise ZenginError(None, f"amount_yen must be an int of yen, got {type(value).__name__} {value!r}")
    if not 0 < value <= MAX_AMOUNT:
        raise ZenginError(None, f"amount_yen must be between 1 and {MAX_AMOUNT:,} yen, got {value:,}")
    return value


def _customer_code(value: str) -> str:
    text = zengin_text(value, MAX_CUSTOMER_CODE + 1, "customer_code")
    if len(text) > MAX_CUSTOMER_CODE:
        raise ZenginError(None, f"customer_code must be at most {MAX_CUSTOMER_CODE} characters, got {value!r}")
    return text


def _set(obj: Any, **values: Any) -> None:
    for name, value in values.items():
        object.__setattr__(obj, name, value)


# ---------------------------------------------------------------------------------------------------- model


@dataclass(frozen=True, slots=True)
class Remitter:
    """The paying agency (振込依頼人) and the account the funds leave from; text is kept in Zengin kana."""

    client_code: str  # 振込依頼人コード (委託者コード) the bank assigned, up to 10 digits
    name_kana: str
    bank_code: str
    bank_name_kana: str
    branch_code: str
    branch_name_kana: str
    account_type: int  # 1 普通, 2 当座, 9 その他
    account_number: str

    def __post_init__(self) -> None:
        _set(
            self,
            client_code=_digits(self.client_code, 10, "client_code"),
            name_kana=zengin_text(self.name_kana, 40, "name_kana"),
            bank_code=_digits(self.bank_code, 4, "bank_code", exact=True),
            bank_name_kana=zengin_text(self.bank_name_kana, 15, "bank_name_kana"),
            branch_code=_digits(self.branch_code, 3, "branch_code", exact=True),
            branch_name_kana=zengin_text(self.branch_name_kana, 15, "branch_name_kana"),
            account_type=_account_type(self.account_type, REMITTER_ACCOUNT_TYPES),
            account_number=_digits(self.account_number, 7, "account_number"),
        )
        if not self.name_kana:
            raise ZenginError(None, "name_kana: the remitter needs a name")


@dataclass(frozen=True, slots=True)
class Transfer:
    """One payment into one account (a data record)."""

    bank_code: str
    bank_name_kana: str
    branch_code: str
    branch_name_kana: str
    account_type: int  # 1 普通, 2 当座, 4 貯蓄, 9 その他
    account_number: str
    holder_kana: str
    amount_yen: int
    customer_code: str = ""  # e.g. the application id: shows in the agency's result file and, as EDI, to banks

    def __post_init__(self) -> None:
        _set(
            self,
            bank_code=_digits(self.bank_code, 4, "bank_code", exact=True),
            bank_name_kana=zengin_text(self.bank_name_kana, 15, "bank_name_kana"),
            branch_code=_digits(self.branch_code, 3, "branch_code", exact=True),
            branch_name_kana=zengin_text(self.branch_name_kana, 15, "branch_name_kana"),
            account_type=_account_type(self.account_type, PAYEE_ACCOUNT_TYPES),
            account_number=_digits(self.account_number, 7, "account_number"),
            holder_kana=holder_text(self.holder_kana),
            amount_yen=_amount(self.amount_yen),
            customer_code=_customer_code(self.customer_code),
        )


@dataclass(frozen=True, slots=True)
class TransferFile:
    """One 総合振込 file: who pays, on which day, and the transfers."""

    remitter: Remitter
    transfer_date: datetime.date  # 振込指定日; the file carries only its month and day
    transfers: tuple[Transfer, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.remitter, Remitter):
            raise ZenginError(None, f"remitter must be a Remitter, got {type(self.remitter).__name__}")
        if type(self.transfer_date) is not datetime.date:
            raise ZenginError(None, f"transfer_date must be a date, got {self.transfer_date!r}")
        _set(self, transfers=tuple(self.transfers))
        if not self.transfers:
            raise ZenginError(None, "a transfer file needs at least one transfer")
        if not all(isinstance(t, Transfer) for t in self.transfers):
            raise ZenginError(None, "transfers must all be Transfer")
        if self.total_count > MAX_COUNT:
            raise ZenginError(None, f"{self.total_count:,} transfers: a file holds at most {MAX_COUNT:,}")
        if self.total_yen > MAX_TOTAL:
            raise ZenginError(None, f"the total ¥{self.total_yen:,} does not fit 合計金額 (at most ¥{MAX_TOTAL:,})")

    @property
    def total_count(self) -> int:
        return len(self.transfers)

    @property
    def total_yen(self) -> int:
        return sum(t.amount_yen for t in self.transfers)


def transfer_to(account: Any, amount_yen: int, *, customer_code: str = "") -> Transfer:
    """A transfer into a registered public-fund account (accounts.PublicFundAccount or ValidatedAccount)."""
    bank = bank_info(account.bank_code)
    branch = branch_info(account.bank_code, account.branch_code)
    return Transfer(
        bank_code=account.bank_code,
        bank_name_kana=bank.kana_half if bank else "",
        branch_code=account.branch_code,
        branch_name_kana=branch.kana_half if branch else "",
        account_type=int(account.type_code),
        account_number=account.account_number,
        holder_kana=account.holder_kana,
        amount_yen=amount_yen,
        customer_code=customer_code,
    )


def summary(file: TransferFile) -> dict:
    """What a person checks before sending the file: how many, how much, when, from whom (JSON-ready)."""
    return {
        "count": file.total_count,
        "total_yen": file.total_yen,
        "transfer_date": file.transfer_date.isoformat(),
        "remitter": {"client_code": file.remitter.client_code, "name_kana": file.remitter.name_kana},
    }


# ---------------------------------------------------------------------------------------------------- writing


def _encode(text: str) -> bytes:
    # Python's cp932 reads byte 0x5C as a backslash; in JIS X 0201, which Zengin uses, it is the yen sign.
    return text.replace("¥", "\\").encode("cp932")


def _record(layout: tuple[Field, ...], values: dict[str, str]) -> bytes:
    parts = []
    for field in layout:
        value = values.get(field.key, "")
        if len(value) > field.width:
            raise ZenginError(None, f"{field.name} {value!r} is longer than {field.width}")
        parts.append(value.rjust(field.width, "0") if field.numeric else value.ljust(field.width))
    record = _encode("".join(parts))
    if len(record) != RECORD_LENGTH:
        raise ZenginError(None, f"a record came out {len(record)} bytes, not {RECORD_LENGTH}")
    return record


def _customer_fields(code: str) -> dict[str, str]:
    # A number without leading zeros goes into 顧客コード1・2 (N, zero-padded, so the zeros carry no meaning);
    # any other code keeps every character as EDI情報, which 識別表示 Y marks.
    if code == "" or (code.isdigit() and not code.startswith("0")):
        return {"customer_code": code.rjust(MAX_CUSTOMER_CODE, "0"), "edi_flag": " "}
    return {"customer_code": code, "edi_flag": "Y"}


def write(file: TransferFile, *, newline: bytes = CRLF) -> bytes:
    """The file's bytes: every record 120 bytes, each followed by ``newline`` (CRLF, or b"" for none)."""
    if newline not in (CRLF, b""):
        raise ValueError("newline must be CRLF or b'' (Zengin files take no other separator)")
    r = file.remitter
    records = [
        _record(
            HEADER,
            {
                "kind": "1",
                "type": KIND_TRANSFER,
                "code_set": "0",
                "client_code": r.client_code,
                "name_kana": r.name_kana,
                "date": file.transfer_date.strftime("%m%d"),
                "bank_code": r.bank_code,
                "bank_name_kana": r.bank_name_kana,
                "branch_code": r.branch_code,
                "branch_name_kana": r.branch_name_kana,
                "account_type": str(r.account_type),
                "account_number": r.account_number,
            },
        )
    ]
    for t in file.transfers:
        records.append(
            _record(
                DATA,
                {
                    "kind": "2",
                    "bank_code": t.bank_code,
                    "bank_name_kana": t.bank_name_kana,
                    "branch_code": t.branch_code,
                    "branch_name_kana": t.branch_name_kana,
                    "clearing_house": "0000",
                    "account_type": str(t.account_type),
                    "account_number": t.account_number,
                    "holder_kana": t.holder_kana,
                    "amount": str(t.amount_yen),
                    "new_code": "0",
                    "transfer_method": "7",  # 電信 (telegraphic); 8 文書 is for paper advice
                    **_customer_fields(t.customer_code),
                },
            )
        )
    records.append(_record(TRAILER, {"kind": "8", "count": str(file.total_count), "total": str(file.total_yen)}))
    records.append(_record(END, {"kind": "9"}))
    return b"".join(record + newline for record in records)


# ---------------------------------------------------------------------------------------------------- reading


def _split(data: bytes) -> list[bytes]:
    if not isinstance(data, (bytes, bytearray)):
        raise ZenginError(None, f"a Zengin file is bytes, got {type(data).__name__}")
    data = bytes(data).removesuffix(b"\x1a")  # MS-DOS end-of-file mark some tools still append
    if CRLF in data:
        lines = data.split(CRLF)
        if lines[-1] == b"":
            lines.pop()
    elif b"\r" in data or b"\n" in data:
        raise ZenginError(None, "records are separated by CR or LF alone; Zengin takes CRLF or no separator")
    else:
        if len(data) % RECORD_LENGTH:
            raise ZenginError(
                len(data) // RECORD_LENGTH + 1,
                f"the file is {len(data)} bytes, not a whole number of {RECORD_LENGTH}-byte records",
            )
        lines = [data[i : i + RECORD_LENGTH] for i in range(0, len(data), RECORD_LENGTH)]
    for line, record in enumerate(lines, 1):
        if len(record) != RECORD_LENGTH:
            raise ZenginError(line, f"the record is {len(record)} bytes; Zengin records are {RECORD_LENGTH}")
    if not lines:
        raise ZenginError(None, "the file is empty")
    return lines


def _decode(line: int, record: bytes) -> str:
    try:
        text = record.decode("cp932")
    except UnicodeDecodeError as exc:
        raise ZenginError(line, f"byte {exc.start + 1} is not Shift_JIS") from exc
    if len(text) != RECORD_LENGTH:
        raise ZenginError(line, "the record has double-byte (全角) characters; Zengin text is half-width")
    return text.replace("\\", "¥")


def _fields(line: int, layout: tuple[Field, ...], text: str) -> dict[str, str]:
    values, start = {}, 0
    for field in layout:
        value = text[start : start + field.width]
        start += field.width
        if field.numeric and not (value.isascii() and value.isdigit()):
            raise ZenginError(line, f"{field.name} must be {field.width} digits, got {value!r}")
        values[field.key] = value if field.numeric else value.rstrip(" ")
    return values


def _near(line: int, mmdd: str, today: datetime.date) -> datetime.date:
    """The date with that month and day nearest to ``today``: files are made shortly before they are paid."""
    month, day = int(mmdd[:2]), int(mmdd[2:])
    candidates = []
    for year in range(today.year - 4, today.year + 5):  # wide enough that 29 February finds a leap year
        try:
            candidates.append(datetime.date(year, month, day))
        except ValueError:
            pass
    if not candidates:
        raise ZenginError(line, f"振込指定日 {mmdd} is not a month and day")
    return min(candidates, key=lambda d: abs(d - today))


@contextmanager
def _at(line: int) -> Iterator[None]:
    """Gives a value's error the record it was read from."""
    try:
        yield
    except ZenginError as exc:
        if exc.line is not None:
            raise
        raise ZenginError(line, exc.message) from exc


def _remitter(values: dict[str, str]) -> Remitter:
    if values["type"] != KIND_TRANSFER:
        raise ZenginError(1, f"種別コード {values['type']} is not 総合振込 ({KIND_TRANSFER})")
    if values["code_set"] != "0":
        raise ZenginError(1, f"コード区分 {values['code_set']}: only JIS (0) files are read, not EBCDIC (1)")
    return Remitter(
        client_code=values["client_code"],
        name_kana=values["name_kana"],
        bank_code=values["bank_code"],
        bank_name_kana=values["bank_name_kana"],
        branch_code=values["branch_code"],
        branch_name_kana=values["branch_name_kana"],
        account_type=int(values["account_type"]),
        account_number=values["account_number"],
    )


def _transfer(line: int, values: dict[str, str]) -> Transfer:
    code, flag = values["customer_code"], values["edi_flag"]
    if flag == "Y":
        customer_code = code
    elif flag == "":
        if code and not code.isdigit():
            raise ZenginError(line, f"顧客コード {code!r} must be digits unless 識別表示 is Y (EDI)")
        customer_code = code.lstrip("0")
    else:
        raise ZenginError(line, f"識別表示 must be Y (EDI) or a space, got {flag!r}")
    return Transfer(
        bank_code=values["bank_code"],
        bank_name_kana=values["bank_name_kana"],
        branch_code=values["branch_code"],
        branch_name_kana=values["branch_name_kana"],
        account_type=int(values["account_type"]),
        account_number=values["account_number"],
        holder_kana=values["holder_kana"],
        amount_yen=int(values["amount"]),
        customer_code=customer_code,
    )


def parse(data: bytes, *, today: datetime.date | None = None) -> TransferFile:
    """A 総合振込 file read back, checked record by record; the year of 振込指定日 is the one nearest ``today``."""
    texts = [_decode(line, record) for line, record in enumerate(_split(data), 1)]
    if texts[0][0] != "1":
        raise ZenginError(1, f"the first record must be the header (データ区分 1), not {texts[0][0]!r}")
    header = _fields(1, HEADER, texts[0])
    transfers: list[Transfer] = []
    trailer: tuple[int, dict[str, str]] | None = None
    ended = False
    for line, text in enumerate(texts[1:], 2):
        kind = text[0]
        if ended:
            raise ZenginError(line, f"a record (データ区分 {kind!r}) after the end record (9)")
        if kind == "2":
            if trailer:
                raise ZenginError(line, "a data record (2) after the trailer (8)")
            with _at(line):
                transfers.append(_transfer(line, _fields(line, DATA, text)))
        elif kind == "8":
            if trailer:
                raise ZenginError(line, "a second trailer (8)")
            trailer = (line, _fields(line, TRAILER, text))
        elif kind == "9":
            if not trailer:
                raise ZenginError(line, "the end record (9) comes before any trailer (8)")
            ended = True
        elif kind == "1":
            raise ZenginError(line, "a second header (1): files of several transfer batches are not read")
        else:
            raise ZenginError(line, f"データ区分 {kind!r} is none of 1, 2, 8, 9")
    if not trailer:
        raise ZenginError(len(texts), "the file ends without a trailer (8)")
    if not ended:
        raise ZenginError(len(texts), "the file ends without an end record (9)")

    trailer_line, totals = trailer
    count, total = int(totals["count"]), int(totals["total"])
    if count != len(transfers):
        raise ZenginError(trailer_line, f"合計件数 says {count} transfers, the file has {len(transfers)}")
    if total != sum(t.amount_yen for t in transfers):
        raise ZenginError(
            trailer_line, f"合計金額 says ¥{total:,}, the transfers add up to ¥{sum(t.amount_yen for t in transfers):,}"
        )
    with _at(1):
        remitter = _remitter(header)
    with _at(trailer_line):  # what is wrong with the whole (no transfers, too many) shows at its totals
        return TransferFile(remitter, _near(1, header["date"], today or datetime.date.today()), tuple(transfers))
