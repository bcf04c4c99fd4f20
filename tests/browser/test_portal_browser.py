"""The resident portal driven through real pages on a phone-sized chromium, against a whole running mesh.

Each test uses its own demo cards (except the mandate test, which needs the family's two adults), so the
tests do not depend on each other's order. Every test saves screenshots to screenshots/.
"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from publicmesh.accounts import bank_name, branch_name

PIN = "1234"
ACTING_BANNER = "さんの代理人として操作しています"
NOT_FOUND = "ページが見つかりません"


# ---------------------------------------------------------------------------------------------------- helpers


def submit(page: Page, button) -> None:
    """Clicks a form's button and waits for the page it leads to (so a following goto cannot cut the POST short)."""
    with page.expect_navigation():
        button.click()


def log_in(page: Page, card, pin: str = PIN) -> None:
    """The login page's card form: choose the (simulated) card, type the auth PIN, submit."""
    page.goto("/login")
    page.select_option("select#card", card.card_id)
    page.fill("#pin", pin)
    submit(page, page.locator("form[action='/login'] button[type=submit]"))


def log_out(page: Page) -> None:
    submit(page, page.locator("header form[action='/logout'] button"))
    expect(page).to_have_url(re.compile(r"/login$"))


def rows(page: Page, section: str) -> dict[str, str]:
    """The <dt>/<dd> pairs of one /me section (by its key: person, address, local_tax…)."""
    card = page.locator(f"section[aria-labelledby='s-{section}']")
    labels, values = card.locator("dt").all_inner_texts(), card.locator("dd").all_inner_texts()
    return dict(zip(labels, values))


def record_ids(page: Page) -> list[str]:
    return page.locator("table.records tbody tr").evaluate_all("trs => trs.map(tr => tr.id)")


def expect_greeting(page: Page, card) -> None:
    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.locator("main h1")).to_have_text(f"{card.name} さん、こんにちは")


def settings_section(page: Page, heading_id: str):
    return page.locator(f"section[aria-labelledby='{heading_id}']")


# ------------------------------------------------------------------------------------------------------ tests


def test_card_login_greets_by_name_and_a_wrong_pin_shows_the_tries_left(portal, phone, shot):
    page = phone()
    card = portal.cards[4]

    log_in(page, card, pin="0000")
    expect(page.locator("p.error[role=alert]")).to_have_text("暗証番号が違います（残り 2 回）")
    expect(page.locator("select#card")).to_have_value(card.card_id)  # the card stays chosen for the next try
    expect(page.locator("nav")).to_have_count(0)  # not logged in
    shot(page, "login-wrong-pin")

    page.fill("#pin", PIN)
    submit(page, page.locator("form[action='/login'] button[type=submit]"))
    expect_greeting(page, card)
    expect(page.locator("nav a[aria-current=page]")).to_have_text("ホーム")
    shot(page, "home")

    # a successful login gives the tries back: the next wrong PIN is again the first of three
    log_out(page)
    log_in(page, card, pin="9999")
    expect(page.locator("p.error[role=alert]")).to_have_text("暗証番号が違います（残り 2 回）")
    log_in(page, card)
    expect_greeting(page, card)


def test_my_information_shows_data_from_several_agencies_through_the_hub(portal, phone, shot):
    page = phone()
    card = portal.cards[0]
    log_in(page, card)
    page.locator("nav").get_by_role("link", name="わたしの情報").click()
    expect(page.locator("main h1")).to_have_text("わたしの情報")

    person = rows(page, "person")
    assert (person["氏"], person["名"]) == (card.family_name, card.given_name)
    assert person["氏（フリガナ）"] and person["名（フリガナ）"], person

    expect(page.locator("#s-address")).to_have_text("住所")
    assert "北見市" in rows(page, "address")["住所"]

    expect(page.locator("#s-local_tax")).to_have_text("住民税")
    local_tax = rows(page, "local_tax")
    assert any(re.fullmatch(r"\d{1,3}(,\d{3})*円", v) for v in local_tax.values()), local_tax

    # each section names the agency that answered and the audit record of the exchange through the hub
    sources = page.locator("main section.card p.meta").all_inner_texts()
    assert len(sources) >= 5, sources
    assert all(re.search(r"公共サービスメッシュ経由で取得（記録番号 \d+）", s) for s in sources), sources
    agencies = {s.split(" · ")[0] for s in sources}
    assert len(agencies) >= 4, agencies  # the municipality's registry and tax, national tax, pension, insurance…
    assert any("住民基本台帳" in a for a in agencies) and any("地方税" in a for a in agencies), agencies
    expect(page.locator("main .bad")).to_have_count(0)  # no 現在取得できません
    shot(page, "me")


def test_opening_my_information_adds_verified_exchange_records(portal, phone, shot):
    page = phone()
    log_in(page, portal.cards[2])
    page.goto("/records")
    expect(page.locator("main h1")).to_have_text("やりとり履歴")
    before = record_ids(page)

    page.goto("/me")  # asks every agency, through the hub, which records each exchange
    expect(page.locator("#s-person")).to_be_visible()
    page.goto("/records")
    after = record_ids(page)
    new = [i for i in after if i not in before]
    assert len(new) >= 5, (before, after)

    agencies = set()
    for record_id in new:
        row = page.locator(f"tr#{record_id}")
        expect(row.locator("td[data-label='検証'] .ok")).to_have_text("✓ 改ざんされていないことを確認しました")
        expect(row.locator("td[data-label='照会した機関']")).to_have_text("マイナポータル")
        agencies.add(row.locator("td[data-label='提供した機関']").inner_text())
    # records show once a signed checkpoint covers them, so under load the newest few may not be listed yet
    assert len(agencies) >= 3, agencies
    expect(page.locator("main .bad")).to_have_count(0)  # no 検証できませんでした anywhere

    # the proof data link gives everything needed to check one record offline
    position = int(new[0].removeprefix("record-"))
    proof = page.request.get(f"/records/{position}.json").json()
    assert proof["record"]["position"] == position and proof["checkpoint"]["tree_size"] > position
    assert "BEGIN PUBLIC KEY" in proof["log_public_key_pem"]
    shot(page, "records")


def test_public_fund_account_is_registered_in_the_persons_own_name(portal, phone, shot):
    assert (bank_name("0001"), branch_name("0001", "100")) == ("みずほ銀行", "本店")
    page = phone()
    card = portal.cards[5]
    log_in(page, card)
    page.goto("/me")
    person = rows(page, "person")
    kana = f"{person['氏（フリガナ）']} {person['名（フリガナ）']}"

    page.goto("/settings")
    account = settings_section(page, "h-account")
    expect(account.locator("p").first).to_have_text("登録されていません")

    def register(holder: str) -> None:
        page.fill("#bank", "0001")
        page.fill("#branch", "100")
        page.select_option("#type", "ordinary")
        page.fill("#number", "1234567")
        page.fill("#holder", holder)
        submit(page, account.locator("button[type=submit]"))

    register(kana)
    expect(page.locator("main p.ok[role=status]")).to_have_text("公金受取口座を登録しました")
    expect(account.locator("p").first).to_have_text("みずほ銀行 本店 普通 ****567")
    expect(page.locator("main")).not_to_contain_text("1234567")  # the full number is never shown back
    shot(page, "settings-account")

    register("ヤマダ タロウ" if kana != "ヤマダ タロウ" else "スズキ イチロウ")
    expect(page.locator("main p.error[role=alert]")).to_have_text("口座名義がご本人の氏名と一致しません")
    expect(account.locator("p").first).to_have_text("みずほ銀行 本店 普通 ****567")  # unchanged
    shot(page, "settings-account-wrong-holder")


def test_proxy_mandate_given_used_and_revoked(portal, phone, shot):
    principal_card, proxy_card = portal.cards[0], portal.cards[1]  # the two adults of one household
    principal, proxy = phone(), phone()
    log_in(principal, principal_card)
    log_in(proxy, proxy_card)

    proxy.goto("/settings")
    code = proxy.locator("#proxy-code").inner_text().strip()
    assert re.fullmatch(r"[A-Z0-9]{10}", code), code

    principal.goto("/settings")
    proxies = settings_section(principal, "h-proxies")
    expect(proxies).to_contain_text("代理人はいません")
    principal.fill("#proxy", code)
    expect(proxies.locator("input[name=scopes][value='self-information']")).to_be_checked()
    submit(principal, proxies.locator("form[action='/settings/mandates'] button[type=submit]"))
    expect(principal.locator("main p.ok[role=status]")).to_have_text("代理権を与えました")
    expect(proxies.locator("ul li")).to_have_count(1)
    expect(proxies.locator("ul li")).to_contain_text(proxy_card.name)
    shot(principal, "settings-mandate-given")

    proxy.goto("/")
    act = proxy.get_by_role("button", name=f"{principal_card.name} さんの代理で操作する")
    expect(act).to_be_visible()
    shot(proxy, "home-proxy-offer")
    submit(proxy, act)
    proxy.goto("/me")
    expect(proxy.locator("main p.card[role=status]")).to_have_text(f"{principal_card.name} {ACTING_BANNER}")
    person = rows(proxy, "person")
    assert (person["氏"], person["名"]) == (principal_card.family_name, principal_card.given_name)
    shot(proxy, "me-acting-for")

    principal.goto("/settings")
    submit(principal, proxies.locator("form[action$='/revoke'] button"))
    expect(principal.locator("main p.ok[role=status]")).to_have_text("代理権を取り消しました")
    expect(proxies).to_contain_text("代理人はいません")

    # The proxy's session that was acting for the principal gets none of the principal's data any more…
    proxy.goto("/me")
    assert principal_card.given_name not in proxy.locator("main dd").all_inner_texts()
    shot(proxy, "me-after-revocation")
    # …and, logged in again, the proxy is offered nothing and sees only their own data.
    log_out(proxy)
    log_in(proxy, proxy_card)
    expect_greeting(proxy, proxy_card)
    expect(proxy.get_by_role("button", name=re.compile("さんの代理で操作する"))).to_have_count(0)
    proxy.goto("/me")
    expect(proxy.get_by_text(ACTING_BANNER)).to_have_count(0)
    person = rows(proxy, "person")
    assert (person["氏"], person["名"]) == (proxy_card.family_name, proxy_card.given_name)


def test_smartphone_wallet_logs_in_without_the_card_until_revoked(portal, phone, shot):
    page = phone()
    card = portal.cards[3]
    log_in(page, card)
    page.goto("/settings")
    wallets = settings_section(page, "h-wallets")
    expect(wallets).to_contain_text("登録はありません")
    enrol = page.locator("#wallet-enrol")
    expect(enrol).to_be_visible()  # shown by wallet.js only where WebCrypto is available
    with page.expect_navigation():  # wallet.js reloads the page once the certificate is stored
        enrol.click()
    expect(wallets.locator("ul li")).to_have_count(1)

    # the private key stays in this browser, and cannot be exported from it
    stored = page.evaluate("""() => new Promise((resolve, reject) => {
        const open = indexedDB.open("publicmesh-wallet", 1);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
            const get = open.result.transaction("wallet").objectStore("wallet").get("current");
            get.onsuccess = () => resolve({extractable: get.result.privateKey.extractable,
                                           type: get.result.privateKey.type,
                                           certificate: get.result.certificate.startsWith("-----BEGIN CERTIFICATE")});
        };
    })""")
    assert stored == {"extractable": False, "type": "private", "certificate": True}
    shot(page, "settings-wallet")

    log_out(page)
    button = page.locator("#wallet-button")
    expect(button).to_be_visible()
    shot(page, "login-wallet")
    button.click()
    expect_greeting(page, card)

    page.goto("/settings")
    submit(page, wallets.locator("form[action*='/wallets/'] button"))
    expect(wallets).to_contain_text("登録はありません")
    log_out(page)
    expect(button).to_be_visible()  # the key is still in the browser, but its certificate is revoked
    with page.expect_response("**/login/wallet") as answer:
        button.click()
    assert answer.value.status == 401
    expect(page.locator("#wallet-state")).to_have_text("ログインできませんでした")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("nav")).to_have_count(0)
    shot(page, "login-wallet-revoked")


def test_english_texts_with_lang_en(portal, phone, shot):
    page = phone()
    card = portal.cards[6]
    log_in(page, card)
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    page.goto("/?lang=en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("main h1")).to_have_text(f"Hello, {card.name}")
    expect(page.locator("nav")).to_contain_text("My information")
    expect(page.locator("nav")).to_contain_text("Exchange history")
    expect(page.locator("header button")).to_have_text("Log out")
    expect(page.locator("header a[lang=ja]")).to_have_text("日本語")
    shot(page, "home-en")

    page.locator("nav").get_by_role("link", name="My information").click()  # the choice is remembered
    expect(page.locator("main h1")).to_have_text("My information")
    expect(page.locator("#s-local_tax")).to_have_text("Resident tax")
    expect(page.locator("main")).not_to_contain_text("わたしの情報")
    shot(page, "me-en")

    page.locator("header a[lang=ja]").click()
    expect(page.locator("main h1")).to_have_text("わたしの情報")


# ------------------------------------------------------------- proxies' landing, revoked mandates, language


def give_mandate(principal: Page, proxy: Page, scopes: tuple[str, ...]) -> None:
    proxy.goto("/settings")
    code = proxy.locator("#proxy-code").inner_text().strip()
    principal.goto("/settings")
    principal.fill("#proxy", code)
    for box in principal.locator("input[name=scopes]").all():
        box.set_checked(box.get_attribute("value") in scopes)
    submit(principal, principal.locator("form[action='/settings/mandates'] button[type=submit]"))
    expect(principal.locator("main p.ok[role=status]")).to_have_text("代理権を与えました")


def test_acting_for_lands_on_a_home_page_with_a_way_back(portal, phone, shot):
    principal_card, proxy_card = portal.cards[7], portal.cards[9]
    principal, proxy = phone(), phone()
    log_in(principal, principal_card)
    log_in(proxy, proxy_card)
    give_mandate(principal, proxy, ("self-information",))  # the form's default scope
    proxy.goto("/")
    with proxy.expect_navigation() as landing:
        proxy.get_by_role("button", name=f"{principal_card.name} さんの代理で操作する").click()
    shot(proxy, "act-for-landing")
    assert landing.value.status == 200
    expect(proxy.locator("main h1")).not_to_have_text(NOT_FOUND)
    expect(proxy.get_by_role("button", name="自分の操作に戻る")).to_be_visible()


def test_a_revoked_mandate_returns_the_proxy_to_their_own_account(portal, phone, shot):
    principal_card, proxy_card = portal.cards[10], portal.cards[11]
    principal, proxy = phone(), phone()
    log_in(principal, principal_card)
    log_in(proxy, proxy_card)
    give_mandate(principal, proxy, ("notices", "self-information"))
    proxy.goto("/")
    submit(proxy, proxy.get_by_role("button", name=f"{principal_card.name} さんの代理で操作する"))
    proxy.goto("/me")
    expect(proxy.get_by_text(ACTING_BANNER)).to_be_visible()

    principal.goto("/settings")
    submit(principal, settings_section(principal, "h-proxies").locator("form[action$='/revoke'] button"))
    expect(principal.locator("main p.ok[role=status]")).to_have_text("代理権を取り消しました")

    response = proxy.goto("/me")
    shot(proxy, "revoked-mandate")
    assert response.status == 200
    expect(proxy.get_by_text(ACTING_BANNER)).to_have_count(0)
    assert rows(proxy, "person")["名"] == proxy_card.given_name


def test_lang_en_survives_the_redirect_to_login(portal, phone, shot):
    page = phone()
    page.goto("/?lang=en")
    shot(page, "login-lang-en")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.locator("html")).to_have_attribute("lang", "en", timeout=1000)
