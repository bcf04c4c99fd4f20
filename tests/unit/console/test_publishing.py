"""Publishing from the console: operators only, the file checked first (line-numbered problems, nothing published),
one run at a time in the background, and the run's summary and operator recorded."""

from __future__ import annotations

import base64
import datetime as dt
import re
import shutil
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from publicmesh.console import publishing
from publicmesh.console.bootstrap import create_app
from publicmesh.console.staff import StaffDirectory, StaffPrincipal, check_roles, totp
from publicmesh.services import store
from publicmesh.services.definition import DefinitionError, definitions_dir
from publicmesh.services.publish import Summary

PASSWORD = "correct horse battery"
KITAMI = "012084"
BROKEN = "id: broken\nversion: 1\ntitle:\n  ja: 壊れた定義\n en: indented wrongly\n"


@pytest.fixture
def engine(engine):
    """The services store on each backend (the root conftest's engine), with its tables."""
    store.metadata.create_all(engine)
    yield engine


@pytest.fixture
def folder(tmp_path) -> Path:
    folder = tmp_path / "definitions"
    folder.mkdir()
    shutil.copy(definitions_dir() / "emergency-benefit.yaml", folder)
    (folder / "broken.yaml").write_text(BROKEN, encoding="utf-8")
    return folder


class FakePublish:
    """Stands for publish_file: reports progress, waits until released, then answers a summary (or fails)."""

    def __init__(self, fail: bool = False):
        self.release, self.started, self.paths, self.fail = threading.Event(), threading.Event(), [], fail

    def __call__(self, path: Path, progress) -> Summary:
        self.paths.append(path)
        progress("evaluate", 1, 2)
        self.started.set()
        assert self.release.wait(10)
        if self.fail:
            raise RuntimeError("the hub did not answer")
        progress("evaluate", 2, 2)
        return Summary(
            "emergency-benefit",
            1,
            residents=12_000,
            eligible=1_234,
            new_offers=1_234,
            notices=1_234,
            prior_intent_applications=56,
            total_yen=234_500_000,
            by_municipality={KITAMI: {"residents": 12_000, "eligible": 1_234, "total_yen": 234_500_000}},
            phases={"validate": 0.01, "evaluate": 1.5, "notify": 0.25, "total": 1.76},
            payout={"files": [{"name": "x.zengin"}], "paid": 50, "paid_yen": 5_000_000, "without_account": 6},
        )


@pytest.fixture
def fake():
    fake = FakePublish()
    yield fake
    fake.release.set()


@pytest.fixture
def staff(tmp_path, engine):
    directory = StaffDirectory.open(engine, tmp_path / "keys")
    directory.secrets = {}
    for municipality, username, role in (
        (None, "ops.tanaka", "operator"),
        (KITAMI, "rev.kitami", "reviewer"),
        (KITAMI, "appr.kitami", "approver"),
    ):
        code = directory.create_staff(municipality, username, PASSWORD, {role})
        directory.secrets[username] = base64.b32decode(code + "=" * (-len(code) % 8))
    return directory


@pytest.fixture
def publisher(engine, fake, folder, tmp_path):
    return publishing.Publisher(engine, fake, tmp_path / "uploads", folder)


@pytest.fixture
def app(engine, staff, publisher):
    return create_app(engine, staff, publisher=publisher)


def log_in(app, staff, username: str) -> TestClient:
    browser = TestClient(app, follow_redirects=False)
    csrf = form_csrf(browser.get("/login").text)
    answer = browser.post(
        "/login",
        data={
            "csrf": csrf,
            "username": username,
            "password": PASSWORD,
            "totp": totp(staff.secrets[username], time.time()),
        },
    )
    assert answer.status_code == 303, answer.text
    return browser


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def upload(browser: TestClient, text: str, action: str, name: str = "benefit.yaml"):
    csrf = form_csrf(browser.get("/publish").text)
    return browser.post(
        "/publish", data={"csrf": csrf, "action": action}, files={"file": (name, text.encode(), "application/yaml")}
    )


def wait_done(browser: TestClient, run_url: str) -> str:
    for _ in range(100):
        if browser.get(run_url + "/progress").json()["status"] != "running":
            return browser.get(run_url).text
        time.sleep(0.05)
    raise AssertionError("the run did not finish")


def test_operators_are_national_and_municipal_roles_are_not():
    check_roles(None, {"operator"})
    check_roles(KITAMI, {"reviewer", "approver"})
    for municipality, roles in (
        (KITAMI, {"operator"}),
        (None, {"operator", "reviewer"}),
        (None, {"reviewer"}),
        (None, set()),
    ):
        with pytest.raises(ValueError):
            check_roles(municipality, roles)
    national = StaffPrincipal("ops.tanaka", "", frozenset({"operator"}))
    assert not national.can_see("") and not national.can_see(KITAMI)


def test_an_upload_is_read_as_text_never_as_a_path(tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("id: not-for-you\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as refused:
        publishing.check(str(secret), "upload.yaml")
    assert "not-for-you" not in str(refused.value)


def test_problems_carry_line_numbers():
    with pytest.raises(DefinitionError) as refused:
        publishing.check(BROKEN, "broken.yaml")
    assert refused.value.problems[0].line == 5


def test_the_catalogue_lists_titles_versions_and_the_last_publication(engine, folder):
    with engine.begin() as conn:
        for version, eligible in ((1, 10), (2, 20)):
            conn.execute(
                insert(store.publications).values(
                    service_id="emergency-benefit",
                    version=version,
                    content_hash="x",
                    definition="",
                    published_at=dt.datetime(2026, 1, version, tzinfo=dt.UTC),
                    eligible=eligible,
                    total_yen=1,
                )
            )
    with engine.connect() as conn:
        listed = {d["name"]: d for d in publishing.catalogue(conn, folder)}
    assert listed["emergency-benefit"]["title_ja"] == "緊急支援給付金（低所得世帯）"
    assert listed["emergency-benefit"]["version"] == 1 and listed["emergency-benefit"]["last"].eligible == 20
    assert listed["broken"]["last"] is None  # listed: choosing it shows the problems


def test_municipal_staff_get_403_on_every_operator_page(app, staff):
    for username in ("rev.kitami", "appr.kitami"):
        browser = log_in(app, staff, username)
        assert browser.get("/publish").status_code == 403
        csrf = form_csrf(browser.get("/queue").text)
        refused = browser.post("/publish", data={"csrf": csrf, "service": "emergency-benefit", "action": "publish"})
        assert refused.status_code == 403 and "権限がありません" in refused.text
        assert browser.get("/publish/runs/0123456789abcdef/progress").status_code == 403
        assert 'href="/publish"' not in browser.get("/").text  # not in their navigation


def test_an_operator_lands_on_publishing_and_sees_the_definitions(app, staff):
    browser = log_in(app, staff, "ops.tanaka")
    assert browser.get("/").headers["location"] == "/publish"
    page = browser.get("/publish").text
    assert "ops.tanaka（全国）" in page and "緊急支援給付金（低所得世帯）" in page and "未公開" in page


def test_an_invalid_file_shows_its_lines_and_publishes_nothing(app, staff, fake, engine):
    browser = log_in(app, staff, "ops.tanaka")
    answer = upload(browser, BROKEN, "publish", "mine.yaml")
    assert answer.status_code == 422
    assert "mine.yaml に 1 件の問題があります" in answer.text and "5行目" in answer.text
    chosen = browser.post("/publish", data={"csrf": form_csrf(answer.text), "service": "broken", "action": "publish"})
    assert chosen.status_code == 422 and "5行目" in chosen.text
    assert fake.paths == []
    with engine.connect() as conn:
        assert conn.execute(select(publishing.runs)).first() is None


def test_check_only_publishes_nothing(app, staff, fake):
    browser = log_in(app, staff, "ops.tanaka")
    text = (definitions_dir() / "emergency-benefit.yaml").read_text(encoding="utf-8")
    answer = upload(browser, text, "check")
    assert answer.status_code == 200 and "問題はありません" in answer.text and fake.paths == []


def test_one_run_at_a_time_then_the_summary_and_who_published(app, staff, fake, publisher, engine):
    browser = log_in(app, staff, "ops.tanaka")
    text = (definitions_dir() / "emergency-benefit.yaml").read_text(encoding="utf-8")
    started = upload(browser, text, "publish")
    assert started.status_code == 303
    run_url = started.headers["location"]
    assert fake.started.wait(5)
    assert fake.paths[0].parent == publisher.upload_dir and fake.paths[0].read_text(encoding="utf-8") == text

    running = browser.get(run_url).text
    assert 'http-equiv="refresh"' in running and "/static/publish.js" in running  # with or without JavaScript
    assert 'max="2" value="1"' in running
    assert browser.get(run_url + "/progress").json()["progress"] == {"evaluate": [1, 2]}
    csrf = form_csrf(running)
    second = browser.post("/publish", data={"csrf": csrf, "service": "emergency-benefit", "action": "publish"})
    assert second.status_code == 409 and "別の公開が実行中です" in second.text and "ops.tanaka" in second.text

    fake.release.set()
    done = wait_done(browser, run_url)
    assert 'http-equiv="refresh"' not in done
    assert "¥234,500,000" in done and 'id="eligible">1,234<' in done and 'id="new-offers">1,234<' in done
    assert 'id="prior-intent">56<' in done and "50 件、¥5,000,000（振込ファイル 1 件）" in done
    assert 'id="started-by">ops.tanaka<' in done and "北見市" in done
    with engine.connect() as conn:
        run = conn.execute(select(publishing.runs)).one()
    assert (run.started_by, run.status, run.summary["eligible"]) == ("ops.tanaka", "done", 1_234)
    assert "ops.tanaka" in browser.get("/publish").text  # the publication record


def test_a_failed_run_says_so_and_frees_the_publisher(engine, staff, folder, tmp_path):
    fake = FakePublish(fail=True)
    fake.release.set()
    app = create_app(engine, staff, publisher=publishing.Publisher(engine, fake, tmp_path / "up", folder))
    browser = log_in(app, staff, "ops.tanaka")
    csrf = form_csrf(browser.get("/publish").text)
    started = browser.post("/publish", data={"csrf": csrf, "service": "emergency-benefit", "action": "publish"})
    page = wait_done(browser, started.headers["location"])
    assert "失敗" in page and "the hub did not answer" in page
    assert fake.paths == [folder / "emergency-benefit.yaml"]  # a packaged definition is published in place
    again = browser.post("/publish", data={"csrf": csrf, "service": "emergency-benefit", "action": "publish"})
    assert again.status_code == 303


def test_a_run_the_console_did_not_see_finish_is_interrupted(engine, fake, folder, tmp_path):
    with engine.begin() as conn:
        publishing.ensure_schema(engine)
        conn.execute(
            insert(publishing.runs).values(
                id="0" * 16,
                service_id="s",
                version=1,
                title_ja="t",
                source="f",
                started_by="ops",
                started_at=dt.datetime.now(dt.UTC),
                status="running",
            )
        )
    publisher = publishing.Publisher(engine, fake, tmp_path / "up", folder)
    assert publisher.get("0" * 16).status == "interrupted"


def test_unknown_runs_and_definitions(app, staff):
    browser = log_in(app, staff, "ops.tanaka")
    assert browser.get("/publish/runs/0123456789abcdef").status_code == 404
    assert browser.get("/publish/runs/..%2Fx").status_code == 404
    csrf = form_csrf(browser.get("/publish").text)
    assert browser.post("/publish", data={"csrf": csrf, "service": "../secret", "action": "check"}).status_code == 404
    assert browser.post("/publish", data={"csrf": csrf, "action": "check"}).status_code == 400


def test_an_uploaded_alias_bomb_is_refused_within_a_second(app, staff, fake):
    browser = log_in(app, staff, "ops.tanaka")
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{b}: &{b} [{','.join(['*' + a] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi")
    )
    started = time.perf_counter()
    answer = upload(browser, bomb, "check", "bomb.yaml")
    assert time.perf_counter() - started < 1
    assert answer.status_code == 422 and "6行目" in answer.text and fake.paths == []


def test_the_publications_progress_is_in_the_consoles_metrics(app, staff, fake):
    browser = log_in(app, staff, "ops.tanaka")
    assert "publicmesh_publish_running 0.0" in browser.get("/metrics").text
    text = (definitions_dir() / "emergency-benefit.yaml").read_text(encoding="utf-8")
    run_url = upload(browser, text, "publish").headers["location"]
    assert fake.started.wait(5)
    metrics = browser.get("/metrics").text
    assert "publicmesh_publish_running 1.0" in metrics
    assert 'publicmesh_publish_done_municipalities{phase="evaluate"} 1.0' in metrics
    assert 'publicmesh_publish_municipalities{phase="evaluate"} 2.0' in metrics
    fake.release.set()
    wait_done(browser, run_url)
    metrics = browser.get("/metrics").text
    assert "publicmesh_publish_running 0.0" in metrics
    assert 'publicmesh_publish_done_municipalities{phase="evaluate"} 2.0' in metrics
