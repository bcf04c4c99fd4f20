"""Half-width kana as bank files carry it (accounts.kana): the narrowing the holder names and Zengin files use."""

from publicmesh.accounts.kana import to_bank_kana, to_halfwidth_kana


def test_halfwidth_kana():
    assert to_halfwidth_kana("サトウ タロウ") == "ｻﾄｳ ﾀﾛｳ"
    assert to_halfwidth_kana("ガッコウ") == "ｶﾞｯｺｳ"
    assert to_halfwidth_kana("ABC123") == "ABC123"


def test_bank_kana_enlarges_small_kana():
    assert to_bank_kana("キョウコ") == "ｷﾖｳｺ"
    assert to_bank_kana("ﾊｯﾄﾘ abc") == "ﾊﾂﾄﾘ ABC"
