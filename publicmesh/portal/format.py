"""Showing values the way a resident reads them: yen with separators, dates, and words for codes."""

from __future__ import annotations

import datetime as dt

_WORDS = {
    "resident": ("住民", "Resident"),
    "deceased": ("死亡（除票）", "Deceased"),
    "moved-out": ("転出", "Moved out"),
    "non-registered": ("住登外", "Not registered here"),
    "head": ("世帯主", "Head of household"),
    "spouse": ("配偶者", "Spouse"),
    "child": ("子", "Child"),
    "parent": ("父母", "Parent"),
    "single": ("世帯主（単身）", "Head (single)"),
    "national": ("国民年金", "National pension"),
    "employees": ("厚生年金", "Employees' pension"),
    "contributing": ("加入中", "Contributing"),
    "receiving": ("受給中", "Receiving"),
    "stopped": ("停止", "Stopped"),
    "kyokai": ("全国健康保険協会（協会けんぽ）", "Japan Health Insurance Association"),
    "kokuho": ("国民健康保険", "National Health Insurance"),
    "koki": ("後期高齢者医療制度", "Late-stage elderly medical care"),
    "active": ("資格あり", "Active"),
    "pending": ("手続き待ち", "Pending"),
    "ended": ("資格喪失", "Ended"),
    "insured": ("被保険者", "Insured"),
    "lost": ("資格喪失", "Lost"),
    "paying": ("支給中", "Being paid"),
}


def word(value: str, lang: str) -> str:
    ja, en = _WORDS.get(value, (value, value))
    return en if lang == "en" else ja


def yen(value: int, lang: str) -> str:
    return f"¥{value:,}" if lang == "en" else f"{value:,}円"


def date(value: str, lang: str) -> str:
    try:
        d = dt.date.fromisoformat(value[:10])
    except ValueError:
        return value
    return d.strftime("%-d %b %Y") if lang == "en" else f"{d.year}年{d.month}月{d.day}日"


def display(name: str, value, attribute: dict | None, lang: str) -> str:
    """One attribute value as text; ``attribute`` is the catalog's description (titles and JSON schema)."""
    if value is None:
        return "—"
    schema = (attribute or {}).get("schema", {})
    title_en = (attribute or {}).get("title_en", "")
    if isinstance(value, bool):
        return ("はい" if value else "いいえ") if lang == "ja" else ("Yes" if value else "No")
    if isinstance(value, int) and "yen" in title_en:
        return yen(value, lang)
    if name == "sex":
        return {1: ("男", "Male"), 2: ("女", "Female")}.get(value, ("", ""))[lang == "en"]
    if isinstance(value, str) and schema.get("format") == "date":
        return date(value, lang)
    if isinstance(value, str):
        return word(value, lang)
    return str(value)


def label(name: str, attribute: dict | None, lang: str) -> str:
    if not attribute:
        return name
    return attribute["title_en"] if lang == "en" else attribute["title_ja"]
