"""The browser keeps the log's checkpoint it was shown on やりとり履歴 and, on the next visit, checks in JavaScript a
consistency proof from it to today's checkpoint: quietly reassuring when the log only grew, a warning when not."""

from __future__ import annotations

import base64
import json
import re

from playwright.sync_api import expect
from test_portal_browser import log_in

from publicmesh.audit import merkle

CONSISTENT = "記録の一貫性を確認しました"
WARNING = "ご注意ください"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_script_checks_rfc9162_consistency_proofs_as_python_makes_them(phone, portal):
    page = phone()
    page.goto("/login")
    page.add_script_tag(url="/static/consistency.js")
    leaves = [merkle.leaf_hash(f"record {i}".encode()) for i in range(70)]
    cases = []
    for old, new in [(0, 0), (0, 5), (1, 1), (1, 2), (3, 7), (4, 8), (5, 70), (8, 70), (64, 70), (69, 70), (33, 64)]:
        proof = merkle.consistency_proof(old, leaves[:new])
        good = [old, new, b64(merkle.root(leaves[:old])), b64(merkle.root(leaves[:new])), [b64(h) for h in proof]]
        cases.append((good, True))
        if proof:  # a tampered proof, or a different old tree, must not verify
            cases.append(([*good[:4], [b64(bytes(32))] + good[4][1:]], False))
            cases.append(([old, new, b64(merkle.leaf_hash(b"x")), good[3], good[4]], False))
    cases.append(([7, 5, b64(merkle.root(leaves[:7])), b64(merkle.root(leaves[:5])), []], False))
    results = page.evaluate(
        """async cases => {
             const L = window.publicmeshLog, out = [];
             for (const [m, n, a, b, proof] of cases) {
               out.push(await L.verifyConsistency(m, n, L.bytes(a), L.bytes(b), proof.map(L.bytes)));
             }
             return out;
           }""",
        [c for c, _ in cases],
    )
    assert results == [expected for _, expected in cases]


def test_a_second_visit_checks_the_log_grew_from_the_kept_checkpoint(phone, portal, shot):
    page = phone()
    log_in(page, portal.cards[5])
    page.goto("/records")
    status = page.locator("#log-consistency")
    expect(status).to_be_hidden()  # the first visit has nothing to compare with: it keeps what it was shown
    kept = page.evaluate("Object.entries(localStorage).filter(([k]) => k.startsWith('publicmesh.checkpoint.'))")
    assert len(kept) == 1
    key, first = kept[0][0], json.loads(kept[0][1])
    assert first["size"] == int(status.get_attribute("data-size")) and len(base64.b64decode(first["root"])) == 32

    page.goto("/me")  # fetching わたしの情報 adds exchange records: the log grows
    page.goto("/records")
    expect(status).to_have_text(re.compile(CONSISTENT))
    second = json.loads(page.evaluate(f"localStorage.getItem({json.dumps(key)})"))
    assert second["size"] > first["size"]
    shot(page, "records-consistency-checked")

    # What the browser kept is not in today's log (a log rewritten since): the person is warned, and what was
    # kept stays, so the warning is shown again on the next visit.
    forged = {**second, "root": b64(merkle.leaf_hash(b"another log"))}
    page.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps(forged))})")
    page.goto("/records")
    expect(status).to_have_text(re.compile(WARNING))
    expect(status).to_have_attribute("role", "alert")
    shot(page, "records-consistency-warning")
    # A log cut back below what was shown: the same warning.
    page.evaluate(f"localStorage.setItem({json.dumps(key)}, {json.dumps(json.dumps({**second, 'size': 10**9}))})")
    page.goto("/records")
    expect(status).to_have_text(re.compile(WARNING))
