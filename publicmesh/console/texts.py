"""Console texts in Japanese (default) and English, and how amounts, times and durations read."""

from __future__ import annotations

import datetime as dt

from publicmesh.applications import lifecycle

JST = dt.timezone(dt.timedelta(hours=9), "JST")  # no daylight saving, so no tz database needed

TEXTS: dict[str, tuple[str, str]] = {
    "site": ("職員用画面（公共サービス）", "Staff console (public services)"),
    "skip": ("本文へ移動", "Skip to content"),
    "lang_switch": ("English", "日本語"),
    "dashboard": ("概況", "Overview"),
    "queue": ("審査待ち", "Review queue"),
    "login": ("職員ログイン", "Staff login"),
    "logout": ("ログアウト", "Log out"),
    "username": ("職員ID", "Staff ID"),
    "password": ("パスワード", "Password"),
    "totp": ("確認コード（認証アプリの6桁）", "Verification code (6 digits from your authenticator app)"),
    "login_failed": ("職員ID、パスワードまたは確認コードが違います。", "Wrong staff ID, password or code."),
    "login_locked": (
        "アカウントがロックされています。管理者に解除を依頼してください。",
        "The account is locked; ask an administrator to unlock it.",
    ),
    "signed_in_as": ("{user}（{municipality}）", "{user} ({municipality})"),
    "by_status": ("状況別の件数", "Applications by status"),
    "avg_decision": ("受付から決定までの平均時間", "Average time from submission to decision"),
    "decided_n": ("決定済み {n} 件の平均", "over {n} decisions"),
    "no_decisions": ("まだ決定はありません", "No decisions yet"),
    "awaiting_second": ("二人目の承認待ち", "Waiting for a second approver"),
    "count": ("件数", "Count"),
    "total": ("合計", "Total"),
    "service": ("サービス", "Service"),
    "amount": ("金額", "Amount"),
    "status": ("状況", "Status"),
    "submitted": ("受付日時", "Submitted"),
    "decided": ("決定日時", "Decided"),
    "channel": ("申請方法", "Channel"),
    "case": ("案件", "Case"),
    "open_case": ("開く", "Open"),
    "applicant": ("申請者（仮名ID）", "Applicant (pseudonym)"),
    "queue_empty": ("審査待ちの申請はありません。", "Nothing waits for review."),
    "queue_hint": ("古い順に表示しています。", "Oldest first."),
    "showing": ("{first}–{last} 件目（全 {n} 件）", "{first}–{last} of {n}"),
    "newer": ("前へ", "Previous"),
    "older": ("次へ", "Next"),
    "form": ("申請内容（行政が保有する情報で入力済み）", "The form (pre-filled from what government holds)"),
    "revision_previous": ("額改定：改定前の額", "Amount revision: before"),
    "revision_revised": ("額改定：改定後の額（差額を申請）", "Amount revision: after (the difference is claimed)"),
    "history": ("履歴", "History"),
    "when": ("日時", "When"),
    "actor": ("担当", "By"),
    "reason": ("理由", "Reason"),
    "exchange_records": ("この情報を取得したやりとりの記録", "The exchange records that fetched it"),
    "exchange_hint": (
        "公共サービスメッシュの監査ログ（交換記録）の記録番号です。",
        "Positions in the hub's audit log of exchange records.",
    ),
    "no_exchange_records": ("記録番号は保存されていません。", "No record positions were stored."),
    "record_n": ("記録番号 {n}", "Record {n}"),
    "signed": ("署名用電子証明書で署名済み", "Signed with a signing certificate"),
    "four_eyes": ("二者確認（審査者と別の承認者）が必要", "Four-eyes: needs a reviewer and a different approver"),
    "reviewed_by": ("一次審査：{user}（承認者の決裁待ち）", "Reviewed by {user}; waits for an approver"),
    "approved_by": ("承認：{user}", "Approved by {user}"),
    "decide": ("決定", "Decision"),
    "wait_second": (
        "一次審査を済ませました。承認は別の承認者が行います。",
        "You reviewed this; a different approver makes the approval.",
    ),
    "approve": ("承認する", "Approve"),
    "review_approve": ("一次審査を完了する（承認へ回す）", "Complete review (send to an approver)"),
    "reject": ("不支給にする", "Reject"),
    "return": ("申請者に差し戻す", "Return to the person"),
    "reason_label": ("理由（申請者に表示されます）", "Reason (the person sees it)"),
    "not_open": ("この申請は審査中ではないため操作できません。", "This application is not open for a decision."),
    "done_reviewed": (
        "一次審査を記録しました。別の承認者の承認を待ちます。",
        "Review recorded; a different approver must now approve.",
    ),
    "done_approved": ("承認しました。", "Approved."),
    "done_rejected": ("不支給にしました。", "Rejected."),
    "done_returned": ("申請者に差し戻しました。", "Returned to the person."),
    "err_reason": ("理由を入力してください。", "Enter a reason."),
    "err_role": (
        "この操作をする権限（審査者または承認者）がありません。",
        "You need the reviewer or approver role for this.",
    ),
    "err_approver": ("最終の承認は承認者の権限が必要です。", "The final approval needs the approver role."),
    "err_same_person": (
        "一次審査をした職員は、同じ申請を承認できません。別の承認者が承認してください。",
        "You reviewed this application, so you cannot also approve it; a different approver must.",
    ),
    "err_not_open": (
        "この申請は既に決定済みか、取り下げられています。",
        "This application is already decided or withdrawn.",
    ),
    "err_changed": (
        "他の職員が先に操作しました。画面を確認してください。",
        "Another staff member acted first; check the case again.",
    ),
    "err_csrf": ("フォームの有効期限が切れました。もう一度操作してください。", "The form expired; please try again."),
    "not_found": ("ページが見つかりません", "Page not found"),
    "error": ("エラー", "Error"),
    "try_later": (
        "処理できませんでした。しばらくしてからもう一度お試しください。",
        "Something went wrong. Please try again later.",
    ),
    "back_queue": ("審査待ちへ戻る", "Back to the queue"),
    "reviewed_note": ("一次審査（二者確認）", "Reviewed (first of two)"),
    "yes": ("はい", "Yes"),
    "no": ("いいえ", "No"),
    **lifecycle.text_entries(),
    "channel_tap": ("ワンタップ申請", "One tap"),
    "channel_prior-intent": ("事前の意思表示", "Prior intent"),
    "channel_proxy": ("代理人", "Proxy"),
    # Publishing a service (operators, national).
    "national": ("全国", "National"),
    "forbidden": ("権限がありません", "Not allowed"),
    "err_municipal": (
        "審査の画面は、市区町村の職員だけが使えます。運用担当者は「サービスの公開」をお使いください。",
        "Only municipal staff can review cases. Operators publish services.",
    ),
    "err_operator": (
        "この画面は、サービスを公開する運用担当者（全国）だけが使えます。",
        "Only operators (national staff who publish services) can use this page.",
    ),
    "publish": ("サービスの公開", "Publish a service"),
    "publish_hint": (
        "サービス定義（YAML）を検証してから、全住民の支給要件を判定し、対象の方へのお知らせ、"
        "事前の意思表示による申請、振込ファイルを作成します。もう一度公開しても、作成済みのものは重複しません。",
        "The definition (YAML) is checked first; then every resident's eligibility is decided, notices go "
        "to those eligible, applications are made for prior intents and payout files are written. "
        "Publishing again creates only what is new.",
    ),
    "upload": ("定義ファイルをアップロード", "Upload a definition"),
    "upload_file": ("サービス定義ファイル（YAML、{mb}MBまで）", "Service definition file (YAML, up to {mb} MB)"),
    "check": ("検証する", "Check"),
    "check_publish": ("検証して公開する", "Check and publish"),
    "definitions": ("公開できるサービス定義", "Definitions you can publish"),
    "version": ("版", "Version"),
    "version_n": ("第{n}版", "version {n}"),
    "last_publication": ("前回の公開", "Last publication"),
    "publish_action": ("操作", "Action"),
    "last_summary": (
        "第{version}版（{when}）対象 {eligible} 件、{total}",
        "version {version} ({when}): {eligible} eligible, {total}",
    ),
    "never_published": ("未公開", "Not published yet"),
    "valid": (
        "{name}：問題はありません（{id} 第{version}版「{title}」）。公開はしていません。",
        "{name}: no problems ({id} version {version}, “{title}”). Nothing was published.",
    ),
    "invalid": (
        "{name} に {n} 件の問題があります。公開していません。",
        "{name} has {n} problem(s); nothing was published.",
    ),
    "problem_at": ("{line}行目 {column}列", "line {line}, column {column}"),
    "err_no_file": ("定義ファイルを選んでください。", "Choose a definition file."),
    "err_no_definition": ("そのサービス定義はありません。", "There is no such definition."),
    "err_too_large": ("ファイルが大きすぎます（{mb}MBまで）。", "The file is too large (up to {mb} MB)."),
    "err_not_utf8": ("ファイルはUTF-8のテキストにしてください。", "The file must be UTF-8 text."),
    "err_busy": (
        "別の公開が実行中です。終わってからもう一度公開してください。",
        "Another publication is running; publish again once it has finished.",
    ),
    "busy_run": (
        "実行中：{title}（第{version}版）、{user} が {when} に開始",
        "Running: {title} (version {version}), started by {user} at {when}",
    ),
    "view_run": ("進行状況を見る", "See its progress"),
    "recent_runs": ("公開の記録", "Publication record"),
    "no_runs": ("まだ公開していません。", "Nothing published yet."),
    "started_by": ("公開者", "Published by"),
    "started_at": ("開始日時", "Started"),
    "finished_at": ("終了日時", "Finished"),
    "source": ("ファイル", "File"),
    "details": ("詳細", "Details"),
    "run_running": ("公開中", "Publishing"),
    "run_done": ("完了", "Done"),
    "run_failed": ("失敗", "Failed"),
    "run_interrupted": ("中断", "Interrupted"),
    "run_failed_detail": (
        "公開が途中で止まりました。作成済みのものは残ります。もう一度公開すると、足りない分だけを作成します。",
        "The publication stopped. What it made stays; publishing again creates only what is missing.",
    ),
    "run_interrupted_detail": (
        "公開中に職員用画面が停止したため、終わりが記録されていません。もう一度公開すると、足りない分だけを作成します。",
        "The console stopped during this publication, so its end was not recorded. Publishing "
        "again creates only what is missing.",
    ),
    "progress": ("進行状況", "Progress"),
    "auto_refresh": ("この画面は自動で更新されます。", "This page updates itself."),
    "back_publish": ("サービスの公開へ戻る", "Back to publishing"),
    "results": ("結果", "Results"),
    "eligible": ("対象", "Eligible"),
    "residents": ("住民数", "Residents"),
    "total_amount": ("支給額の合計", "Total amount"),
    "municipality_col": ("市区町村", "Municipality"),
    "new_offers": ("新しい給付の案内（お知らせ）", "New offers (notices)"),
    "prior_intent_applications": ("事前の意思表示による申請", "Applications by prior intent"),
    "paid": ("振込", "Paid"),
    "paid_n": ("{n} 件、{amount}（振込ファイル {files} 件）", "{n}, {amount} ({files} payout files)"),
    "no_payout": ("振込のないサービスです。", "This service pays nothing."),
    "without_account": ("公金受取口座が未登録", "Without a public-fund account"),
    "seconds_by_phase": ("処理時間（秒）", "Seconds by phase"),
    "phase_validate": ("検証", "Check"),
    "phase_fetch": ("データの取得", "Fetch"),
    "phase_evaluate": ("支給要件の判定（市区町村ごと）", "Eligibility (by municipality)"),
    "phase_details": ("申請書に載せる情報の取得（対象者のみ）", "Form data (the eligible only)"),
    "phase_write": (
        "申請書とお知らせの書き込み（次の市区町村の判定と並行）",
        "Forms and notices written (beside the next municipality)",
    ),
    "phase_notify": ("お知らせの送付", "Notices"),
    "phase_decide": ("事前の意思表示による申請と決定", "Prior-intent applications and decisions"),
    "phase_payout": ("振込ファイル", "Payout files"),
    "phase_total": ("合計", "Total"),
}


def translate(key: str, lang: str, **values) -> str:
    ja, en = TEXTS.get(key, (key, key))
    text = en if lang == "en" else ja
    return text.format(**values) if values else text


def yen(value: int) -> str:
    return f"¥{value:,}"


def when(value: dt.datetime | None) -> str:
    """A stored instant in Japan time (stored naive values are UTC)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def duration(seconds: float | None, lang: str) -> str:
    """Hours and minutes; hours run past 24 because office queues are counted in working hours."""
    if seconds is None:
        return "—"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    if lang == "en":
        return f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{hours}時間{minutes}分" if hours else f"{minutes}分"
