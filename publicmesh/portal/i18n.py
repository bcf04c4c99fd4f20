"""Portal texts in Japanese (default) and English."""

from __future__ import annotations

from publicmesh.applications import lifecycle

TEXTS: dict[str, tuple[str, str]] = {
    "site": ("マイナポータル（公共サービスメッシュ）", "Myna Portal (Public Service Mesh)"),
    "skip": ("本文へ移動", "Skip to content"),
    "home": ("ホーム", "Home"),
    "me": ("わたしの情報", "My information"),
    "records": ("やりとり履歴", "Exchange history"),
    "notices": ("お知らせ", "Notices"),
    "applications": ("申請", "Applications"),
    "settings": ("設定", "Settings"),
    "login": ("ログイン", "Log in"),
    "logout": ("ログアウト", "Log out"),
    "login_card": ("マイナンバーカードでログイン", "Log in with your My Number Card"),
    "login_wallet": ("スマートフォンでログイン", "Log in with your smartphone"),
    "card": ("カード", "Card"),
    "pin": ("利用者証明用暗証番号（数字4桁）", "User authentication PIN (4 digits)"),
    "pin_help": ("3回続けて間違えるとロックされます。", "Three wrong tries in a row lock the card."),
    "demo_cards": ("デモ用カード（暗証番号はすべて 1234）", "Demo cards (every PIN is 1234)"),
    "welcome": ("{name} さん、こんにちは", "Hello, {name}"),
    "acting_for": ("{name} さんの代理人として操作しています", "You are acting as proxy for {name}"),
    "unread": ("未読 {n} 件", "{n} unread"),
    "none_held": ("該当する情報はありません", "No record held"),
    "unavailable": ("現在取得できません", "Not available right now"),
    "fetched_via": ("公共サービスメッシュ経由で取得（記録番号 {n}）", "Fetched through the mesh (record {n})"),
    "verified": ("改ざんされていないことを確認しました", "Verified: not altered"),
    "not_verified": ("検証できませんでした", "Could not be verified"),
    "when": ("日時", "When"),
    "who": ("照会した機関", "Who asked"),
    "from": ("提供した機関", "Who provided"),
    "what": ("項目", "What"),
    "why": ("事務・根拠", "Why"),
    "older": ("さらに表示", "Older"),
    "no_records": ("やりとりの記録はまだありません", "No exchanges yet"),
    "no_notices": ("お知らせはありません", "No notices"),
    "offers": ("受け取れる給付", "Benefits you can receive"),
    "open_offer": ("内容を見て申請", "Review and apply"),
    "my_applications": ("申請の状況", "Your applications"),
    "service": ("サービス", "Service"),
    "amount": ("金額", "Amount"),
    "status": ("状況", "Status"),
    "reason": ("理由", "Reason"),
    "apply": ("申請する", "Apply"),
    "applied": ("申請を受け付けました", "Your application was received"),
    "prefilled": (
        "行政が持っている情報で入力済みです。確認して、署名用電子証明書の暗証番号で申請してください。",
        "Everything is filled in from what government already holds. Check it and apply with your signing password.",
    ),
    "prefilled_proxy": (
        "代理人として申請します。入力済みの内容を確認して、あなた自身のマイナンバーカードの署名用電子証明書の暗証番号で"
        "署名してください（ご本人の暗証番号ではありません）。",
        "You are applying as a proxy. Check what is filled in and sign with the signing password of your own "
        "My Number Card (not the person's).",
    ),
    "receiving_account": ("受取口座（公金受取口座）", "Receiving account (public-fund account)"),
    "revision": ("額改定（お子さんが生まれたため）", "Amount revision (a child was born)"),
    "revision_previous": ("改定前の額", "Amount before"),
    "revision_revised": ("改定後の額", "Amount after"),
    "revision_claim": ("今回申請する額（差額）", "Claimed now (the difference)"),
    "no_account_yet": ("未登録です。登録すると振り込まれます。", "Not registered yet: register one to be paid."),
    **lifecycle.text_entries(for_person=True),
    "no_applications": (
        "申請はまだありません。対象となるサービスがあればお知らせでご案内します。",
        "No applications yet. You will be told in Notices when a service applies to you.",
    ),
    "not_found": ("ページが見つかりません", "Page not found"),
    "save": ("保存する", "Save"),
    "lang_switch": ("English", "日本語"),
    "error": ("エラー", "Error"),
    "try_later": (
        "処理できませんでした。しばらくしてからもう一度お試しください。",
        "Something went wrong. Please try again later.",
    ),
    "person": ("基本情報", "Basic information"),
    "address": ("住所", "Address"),
    "household": ("世帯", "Household"),
    "local_tax": ("住民税", "Resident tax"),
    "national_tax": ("所得税", "Income tax"),
    "pension": ("年金", "Pension"),
    "health_insurance": ("医療保険", "Health insurance"),
    "employment_insurance": ("雇用保険", "Employment insurance"),
    "child_allowance": ("児童手当", "Child allowance"),
}


def translate(key: str, lang: str, **values) -> str:
    ja, en = TEXTS.get(key, (key, key))
    return (en if lang == "en" else ja).format(**values)


TEXTS.update(
    {
        "wallet_hint": (
            "このスマートフォンを登録済みの場合は、カードなしでログインできます。",
            "If this phone is enrolled, you can log in without the card.",
        ),
        "me_intro": (
            "各機関が保有するあなたの情報を、公共サービスメッシュ経由でその場で取得して表示しています。取得のたびにやりとり履歴に記録されます。",
            "Fetched live from each agency through the mesh; every fetch is recorded in your exchange history.",
        ),
        "household_members": ("世帯員数", "Household members"),
        "records_intro": (
            "あなたの情報を、いつ・どの機関が・何のために受け取ったかの記録です（記録総数 {size}）。",
            "When, who and why your information was exchanged (log size {size}).",
        ),
        "proof": ("検証", "Proof"),
        "witnessed": (
            "証人（{witness}）が記録総数 {size} の時点の記録に署名しています（{at}）。",
            "A witness ({witness}) cosigned the log at size {size} ({at}).",
        ),
        "log_consistent": (
            "記録の一貫性を確認しました（前回の表示以降、記録は追加されただけです）。",
            "Log consistency checked: since your last visit, records were only added.",
        ),
        "log_inconsistent": (
            "ご注意ください：前回表示した記録と現在の記録の一貫性を確認できませんでした。記録が削除または改変された"
            "おそれがあります。",
            "Warning: the log is not consistent with the one you were shown last time. Records may have been removed "
            "or altered.",
        ),
        "proof_download": ("証明データ", "Proof data"),
        "new": ("未読", "New"),
        "mark_read": ("既読にする", "Mark as read"),
        "mandates_held": ("代理人として操作できる方", "People you may act for"),
        "act_for": ("{name} さんの代理で操作する", "Act for {name}"),
        "act_self": ("自分の操作に戻る", "Back to my own account"),
        "account": ("公金受取口座", "Public-fund receiving account"),
        "no_account": ("登録されていません", "Not registered"),
        "bank_code": ("金融機関コード（4桁）", "Bank code (4 digits)"),
        "branch_code": ("支店コード（3桁）", "Branch code (3 digits)"),
        "account_type": ("預金種目", "Account type"),
        "ordinary": ("普通", "Ordinary"),
        "current": ("当座", "Current"),
        "savings": ("貯蓄", "Savings"),
        "account_number": ("口座番号（7桁）", "Account number (7 digits)"),
        "holder": ("口座名義（カナ）", "Account holder (kana)"),
        "holder_hint": (
            "ご本人名義の口座に限ります。例：ヤマダ タロウ",
            "Must be in your own name, e.g. ヤマダ タロウ",
        ),
        "account_saved": ("公金受取口座を登録しました", "Your public-fund account is registered"),
        "contacts": ("連絡先", "Contact details"),
        "verified_contact": ("確認済み", "Verified"),
        "contact_kind": ("種類", "Kind"),
        "email": ("メールアドレス", "Email"),
        "phone": ("携帯電話番号", "Mobile phone"),
        "contact_address": ("メールアドレスまたは電話番号", "Email address or phone number"),
        "send_code": ("確認コードを送る", "Send a code"),
        "code": ("確認コード（6桁）", "Code (6 digits)"),
        "confirm": ("確認する", "Confirm"),
        "code_sent": ("確認コードを送りました", "A code was sent"),
        "contact_verified": ("連絡先を確認しました", "Contact verified"),
        "code_wrong": ("確認コードが違います", "The code is wrong"),
        "proxies": ("代理人", "Proxies"),
        "my_proxy_code": ("あなたの代理人受付コード", "Your proxy code"),
        "no_mandates": ("代理人はいません", "No proxies"),
        "proxy_code": ("代理人の受付コード", "The proxy's code"),
        "scopes": ("代理の範囲", "Scope"),
        "scope_self-information": ("わたしの情報・やりとり履歴の閲覧", "View my information and history"),
        "scope_applications": ("給付の確認・申請・取り下げ", "See, apply for and withdraw benefits"),
        "scope_notices": ("お知らせ", "Notices"),
        "scope_settings": ("設定", "Settings"),
        "days": ("有効日数", "Valid for (days)"),
        "grant": ("代理権を与える", "Give the mandate"),
        "until": ("期限", "until"),
        "revoke": ("取り消す", "Revoke"),
        "mandate_granted": ("代理権を与えました", "Mandate given"),
        "mandate_revoked": ("代理権を取り消しました", "Mandate revoked"),
        "proxy_unknown": ("受付コードが見つかりません", "No such proxy code"),
        "consents": ("同意と事前の意思表示", "Consents and prior intents"),
        "no_consents": ("同意はありません", "No consents"),
        "prior_intent_text": (
            "対象となる給付金は申請なしで受け取る（事前の意思表示）",
            "Pay me benefits I am eligible for without asking (prior intent)",
        ),
        "on": ("オン", "On"),
        "off": ("オフ", "Off"),
        "turn_on": ("オンにする", "Turn on"),
        "turn_off": ("オフにする", "Turn off"),
        "wallets": ("スマートフォン（ウォレット）", "Smartphone wallets"),
        "no_wallets": ("登録はありません", "None enrolled"),
        "enrol_wallet": ("このスマートフォンを登録する", "Enrol this phone"),
        "wrong_pin": ("暗証番号が違います（残り {n} 回）", "Wrong PIN ({n} tries left)"),
        "card_locked": (
            "カードがロックされています。お住まいの市区町村の窓口で解除してください。",
            "The card is locked. Your municipality's counter can unlock it.",
        ),
        "login_failed": ("ログインできませんでした", "Login failed"),
        "login_expired": (
            "ログイン画面の有効期限が切れました。もう一度ログインしてください。",
            "The login page expired; please log in again.",
        ),
        "children": ("法定代理人として操作できるお子さま", "Children you act for as parent"),
        "act_for_child": ("{age}歳のお子さまの代理で操作する", "Act for your child (age {age})"),
        "child_of_age": ("お子さま（{age}歳）", "Your child (age {age})"),
        "proxy_actions": ("代理人による操作の記録", "What your proxies did"),
        "proxy_did": ("代理人が {action} を操作", "A proxy opened {action}"),
        "new_signing_password": (
            "新しい署名用電子証明書の暗証番号（英数字6〜16桁）",
            "New signing password (6–16 letters and digits)",
        ),
        "signing_certificate": ("署名用電子証明書", "Signing certificate"),
        "signing_good": ("有効です", "Valid"),
        "signing_revoked": (
            "失効しています（住所の変更など）。新しい証明書を発行できます。",
            "Revoked (e.g. after a move). You can have a new one issued.",
        ),
        "reissue": ("新しい証明書を発行する", "Issue a new certificate"),
        "signing_reissued": ("署名用電子証明書を発行しました", "A new signing certificate was issued"),
        "signing_password": (
            "署名用電子証明書の暗証番号（英数字6〜16桁）",
            "Signing password (6–16 letters and digits)",
        ),
    }
)

TEXTS.update(
    {
        "resubmit": ("修正して再提出", "Fix and resubmit"),
        "resubmit_confirm": ("署名して再提出する", "Sign and resubmit"),
        "returned_because": ("差し戻しの理由（担当窓口から）", "Why it was returned (from your municipal office)"),
        "resubmit_intro": (
            "行政が持っている情報は変更できません。ご自身で入力した項目を直し、署名用電子証明書の暗証番号で再提出してください。",
            "What government holds cannot be changed here. Correct what you typed and resubmit with your signing password.",
        ),
        "resubmit_intro_proxy": (
            "代理人として再提出します。入力した項目を直し、あなた自身のマイナンバーカードの署名用電子証明書の暗証番号で"
            "署名してください（ご本人の暗証番号ではありません）。",
            "You are resubmitting as a proxy. Correct what was typed and sign with the signing password of "
            "your own My Number Card (not the person's).",
        ),
        "resubmitted": (
            "修正した申請を再提出しました。もう一度審査されます。",
            "Your corrected application was resubmitted for review.",
        ),
        "withdraw": ("取り下げる", "Withdraw"),
        "withdraw_confirm": ("署名して取り下げる", "Sign and withdraw"),
        "withdraw_intro": (
            "この申請を取り下げます。取り下げた申請は元に戻せません。署名用電子証明書の暗証番号で署名してください。",
            "You are withdrawing this application. This cannot be undone. Sign with your signing password.",
        ),
        "withdraw_intro_proxy": (
            "代理人としてこの申請を取り下げます。取り下げた申請は元に戻せません。あなた自身のマイナンバーカードの"
            "署名用電子証明書の暗証番号で署名してください。",
            "You are withdrawing this application as a proxy. This cannot be undone. Sign with the signing "
            "password of your own My Number Card.",
        ),
        "withdrawn_done": ("申請を取り下げました。", "Your application was withdrawn."),
        "not_withdrawable_title": ("取り下げられません", "Cannot be withdrawn"),
        "not_withdrawable": (
            "この申請は支払済みか、既に取り下げられているため、取り下げられません。",
            "This application is paid or already withdrawn, so it cannot be withdrawn.",
        ),
        "back_applications": ("申請の一覧に戻る", "Back to your applications"),
        "not_returned_title": ("再提出できません", "Cannot be resubmitted"),
        "not_returned": (
            "この申請は差し戻されていないため、再提出できません。",
            "This application was not returned, so it cannot be resubmitted.",
        ),
        "required": ("必須", "required"),
        "typed_missing": ("「{label}」を入力してください", "Please enter {label}"),
        "typed_invalid": ("「{label}」の形式が正しくありません", "{label} is not in a valid form"),
        "typed_unknown": ("この申請にない項目です", "This application has no such field"),
    }
)

TEXTS.update(
    {
        "filter_notices": ("お知らせの種類", "Kinds of notice"),
        "all_notices": ("すべて", "All"),
        "cat_service-eligibility": ("受け取れる給付", "Benefits you can receive"),
        "cat_application-decision": ("申請の結果", "Application decisions"),
        "cat_payout": ("お支払い", "Payments"),
        "cat_account-request": ("口座登録のお願い", "Account requests"),
        "cat_decision": ("決定", "Decisions"),
        "cat_document": ("書類", "Documents"),
        "cat_security": ("セキュリティ", "Security"),
        "cat_info": ("お知らせ", "Information"),
    }
)
