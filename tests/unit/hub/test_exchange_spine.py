"""The exchange on fakes of its collaborators (number service, provider node, audit log): it authorizes, converts,
forwards, checks the provider's answer, records and answers; what it refuses is neither forwarded nor recorded."""

from __future__ import annotations

import asyncio
import base64
import hashlib

import orjson
import pyarrow as pa
import pytest

from publicmesh.audit import ExchangeRecord
from publicmesh.audit.records import SubjectBatch
from publicmesh.hub.deps import HubMetrics
from publicmesh.hub.exchange import Exchange
from publicmesh.hub.registry import Member
from publicmesh.hub.rules import AccessRule, RuleBook
from publicmesh.problems import Problem
from publicmesh.protocol import arrow_ipc, bulk_wire
from publicmesh.protocol.members import AUDIT_DOMAIN, MemberId
from publicmesh.protocol.outbound import SignedAnswer
from publicmesh.protocol.schemas import BulkRequest, NotifyRequest, QueryRequest

CONSUMER = MemberId.parse("MUNI/012084/child-allowance")
OTHER_CITY = MemberId.parse("MUNI/131016/child-allowance")
PROVIDER = MemberId.parse("MUNI/012084/resident-registry")
AFFAIR = "child-allowance-eligibility"
PERSONS = ["aiko", "botan", "chiyo", "daiki", "emi"]
HELD = {  # what the registry holds, by person
    "aiko": {"family_name": "青木", "birth_date": "2019-04-01", "address": "北見市1", "members": ["botan"]},
    "botan": {"family_name": "青木", "birth_date": "1990-01-02", "address": "北見市1", "members": ["aiko"]},
    "chiyo": {"family_name": "千葉", "birth_date": "1985-07-07", "address": "北見市2", "members": []},
    "daiki": {"family_name": "大木", "birth_date": "1970-03-03", "address": "北見市3", "members": []},
}
PROTECTED = {"daiki"}  # under a support measure: the address is withheld
DATASETS = {
    "person": {
        "attributes": [
            {"name": "family_name", "category": "identity"},
            {"name": "birth_date", "category": "identity"},
            {"name": "address", "category": "address"},
        ]
    },
    "household": {"attributes": [{"name": "members", "category": "household"}], "pseudonym_paths": ["members"]},
    "application": {"attributes": [{"name": "received", "category": "application"}]},
}


def _rule(rule_id: str, dataset: str, attributes: tuple[str, ...], **kw) -> AccessRule:
    return AccessRule(
        id=rule_id,
        consumer="MUNI/{code}/child-allowance",
        affair=AFFAIR,
        affair_ja="児童手当",
        provider="MUNI/{code}/resident-registry",
        dataset=dataset,
        attributes=attributes,
        legal_basis=f"law of {rule_id}",
        **kw,
    )


RULES = RuleBook(
    [
        _rule("person", "person", ("family_name", "birth_date", "address"), scan=False),
        _rule("household", "household", ("members",)),
        _rule("apply", "application", ("received",), write=True),
    ],
    [],
)


def pseudonym(person: str, domain: str) -> str:
    """The person's pseudonym in a domain: 22 characters, a different one in every domain."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"{person}|{domain}".encode()).digest()[:16]).decode().rstrip("=")


def mine(person: str) -> str:
    return pseudonym(person, CONSUMER.pseudonym_domain)


def theirs(person: str) -> str:
    return pseudonym(person, PROVIDER.pseudonym_domain)


def audited(person: str) -> str:
    return pseudonym(person, AUDIT_DOMAIN)


class FakeNumbers:
    """The number service: knows PERSONS in every domain; each call kept as (source, values, targets)."""

    def __init__(self):
        self.calls: list[tuple[str, list, tuple[str, ...]]] = []

    def _one(self, value: str | None, source: str, target: str) -> str | None:
        found = next((p for p in PERSONS if value and pseudonym(p, source) == value), None)
        return pseudonym(found, target) if found else None

    async def convert(self, value: str, source: str, targets: tuple[str, ...]) -> dict[str, str | None]:
        self.calls.append((source, [value], targets))
        return {t: self._one(value, source, t) for t in targets}

    async def convert_many(self, values: list[str], source: str, targets: tuple[str, ...]) -> dict[str, list]:
        self.calls.append((source, list(values), targets))
        return {t: [self._one(v, source, t) for v in values] for t in targets}

    async def convert_arrays(self, values, source: str, targets: tuple[str, ...]) -> dict:
        listed = values.to_pylist()
        self.calls.append((source, listed, targets))
        return {t: pa.array([self._one(v, source, t) for v in listed], pa.string()) for t in targets}

    async def convert_scan(self, values, source: str, targets: tuple[str, ...]) -> tuple[dict, None]:
        return await self.convert_arrays(values, source, targets), None  # nothing kept: every scan sorts anew


class FakeProvider:
    """The registry's node behind the hub's signed calls (answers already verified, as Outbound returns them).

    ``status`` answers every call with that HTTP status; ``failure`` is raised as Outbound raises a timeout or an
    answer whose signature does not verify."""

    def __init__(self, status: int | None = None, failure: Problem | None = None):
        self.status, self.failure = status, failure
        self.calls: list[tuple[str, object]] = []  # (path, the JSON document or the subjects asked)

    def _held(self, subject: str) -> str | None:
        return next((p for p in HELD if theirs(p) == subject), None)

    async def post(self, base_url, path, doc, expect_signer, *, timeout_s=None, request_id=None) -> SignedAnswer:
        assert (base_url, expect_signer) == ("http://registry", str(PROVIDER))
        self.calls.append((path, doc))
        if self.failure:
            raise self.failure
        if self.status:
            return SignedAnswer(self.status, orjson.dumps({"detail": "refused by the node"}), "application/json")
        if path == "/v1/bulk":  # the shared reads of concurrent queries (hub.reads), asked as a JSON list
            return self._bulk(doc["subjects"], doc["attributes"])
        assert path == "/v1/query"
        person = self._held(doc["subject"])
        if person is None:
            return SignedAnswer(404, b"{}", "application/problem+json")
        if "payload" in doc:  # a submission under a write rule
            row = {"received": True}
        else:
            row = {a: HELD[person][a] for a in doc["attributes"]}
        if "members" in row:
            row["members"] = [theirs(m) for m in row["members"]]
        body = {"subject": doc["subject"], "data": row, "protected": person in PROTECTED}
        return SignedAnswer(200, orjson.dumps(body), "application/json")

    async def post_bytes(
        self, base_url, path, body, content_type, expect_signer, *, timeout_s=None, request_id=None
    ) -> SignedAnswer:
        assert (base_url, expect_signer, path) == ("http://registry", str(PROVIDER), "/v1/bulk")
        fields, subjects = bulk_wire.read_subjects(bytes(body), 1000)
        asked = subjects.to_pylist()
        self.calls.append((path, asked))
        if self.failure:
            raise self.failure
        if self.status:
            return SignedAnswer(self.status, b"{}", "application/problem+json")
        return self._bulk(asked, fields["attributes"])

    def _bulk(self, asked: list[str], attributes: list[str]) -> SignedAnswer:
        # Answered in the node's own order (here the reverse of the request's), only the subjects it holds.
        found = [(i, self._held(s)) for i, s in reversed(list(enumerate(asked))) if self._held(s)]
        columns = {a: [HELD[p][a] for _, p in found] for a in attributes}
        columns["_protected"] = [p in PROTECTED for _, p in found]
        columns["i"] = pa.array([i for i, _ in found], pa.int32())
        return SignedAnswer(200, bytes(arrow_ipc.to_body(pa.table(columns))), arrow_ipc.ARROW_STREAM)


class FakeAudit:
    """The exchange record log: every record appended, at consecutive positions from 100."""

    def __init__(self):
        self.appended: list[ExchangeRecord | SubjectBatch] = []

    async def append_many(self, batch) -> list[int]:
        start = 100 + len(self.appended)
        self.appended += batch
        return list(range(start, start + len(batch)))


class FakeCatalog:
    async def dataset(self, member: MemberId, name: str) -> dict:
        assert member == PROVIDER
        return DATASETS[name]


class FakeDirectory:
    def __init__(self):
        registry = Member(PROVIDER, "http://registry", "", "active", "住民記録", "Resident registry")
        self.members = {str(PROVIDER): registry}

    def get(self, member):
        return self.members.get(str(member))


class Hub:
    """An exchange and its fakes."""

    def __init__(self, provider: FakeProvider | None = None):
        self.numbers, self.provider, self.audit = FakeNumbers(), provider or FakeProvider(), FakeAudit()
        self.exchange = Exchange(FakeDirectory(), RULES, FakeCatalog(), self.numbers, self.provider, self.audit)

    def query(self, person: str, attributes=("family_name", "birth_date"), consumer=CONSUMER, **kw) -> dict:
        return asyncio.run(self._query(person, attributes, consumer, "req-1", **kw))

    def _query(self, person: str, attributes, consumer, request_id: str, **kw):
        subject = kw.pop("subject", None) or pseudonym(person, consumer.pseudonym_domain)
        fields = dict(provider=str(PROVIDER), dataset="person", purpose=AFFAIR) | kw
        req = QueryRequest(subject=subject, attributes=list(attributes), **fields)
        return self.exchange.query(consumer, req, request_id)

    def concurrent(self, persons: list[str], attributes=("family_name", "address"), **kw) -> list:
        """Queries arriving together, each with its own request id; each one's answer or Problem."""

        async def together():
            calls = [self._query(p, attributes, CONSUMER, f"req-{k}", **kw) for k, p in enumerate(persons)]
            return await asyncio.gather(*calls, return_exceptions=True)

        return asyncio.run(together())

    def bulk(self, subjects: list[str], attributes=("family_name", "address"), consumer=CONSUMER, **kw) -> pa.Table:
        fields = dict(provider=str(PROVIDER), dataset="person", purpose=AFFAIR) | kw
        req = BulkRequest(subjects=subjects, attributes=list(attributes), **fields)
        return asyncio.run(self.exchange.bulk(consumer, req, "req-2"))

    def refused(self, slug: str, call) -> Problem:
        with pytest.raises(Problem) as refused:
            call()
        assert refused.value.type.slug == slug, refused.value.detail
        return refused.value


def test_a_query_is_authorized_converted_forwarded_recorded_and_answered():
    hub = Hub()
    answer = hub.query("aiko")
    # converted from the consumer's pseudonym to the provider's and the audit domain's
    assert hub.numbers.calls == [(CONSUMER.pseudonym_domain, [mine("aiko")], (PROVIDER.pseudonym_domain, "audit"))]
    # forwarded under the provider's pseudonym, with only the attributes asked
    assert hub.provider.calls == [
        (
            "/v1/query",
            {
                "member": str(PROVIDER),
                "dataset": "person",
                "subject": theirs("aiko"),
                "attributes": ["family_name", "birth_date"],
            },
        )
    ]
    # recorded under the audit pseudonym, with the rule's legal basis
    (record,) = hub.audit.appended
    assert (record.kind, record.consumer, record.provider, record.dataset) == (
        "query",
        str(CONSUMER),
        str(PROVIDER),
        "person",
    )
    assert (record.subject, record.purpose, record.legal_basis, record.request_id) == (
        audited("aiko"),
        AFFAIR,
        "law of person",
        "req-1",
    )
    assert record.attributes == ("family_name", "birth_date")
    # answered under the consumer's own pseudonym, naming the record
    assert answer == {
        "request_id": "req-1",
        "audit_record": 100,
        "provider": str(PROVIDER),
        "dataset": "person",
        "subject": mine("aiko"),
        "data": {"family_name": "青木", "birth_date": "2019-04-01"},
        "withheld": [],
        "rule": "person",
        "legal_basis": "law of person",
    }


@pytest.mark.parametrize(
    "change",
    [
        {"consumer": OTHER_CITY},  # another city's system: {code} binds consumer and provider to one city
        {"attributes": ("family_name", "income")},  # an attribute no rule names for this affair
        {"purpose": "another-affair"},
        {"legal_basis": "a basis the rule does not give"},
        {"payload": {"form": "x"}},  # a submission under a read rule
    ],
)
def test_a_query_no_rule_allows_is_refused_and_nothing_is_forwarded_or_recorded(change):
    hub = Hub()
    problem = hub.refused("not-allowed", lambda: hub.query("aiko", **change))
    assert problem.status == 403
    assert hub.provider.calls == [] and hub.audit.appended == []


def test_an_unknown_provider_or_subject_is_not_forwarded():
    hub = Hub()
    hub.refused("unknown-member", lambda: hub.query("aiko", provider="MUNI/012084/local-tax"))
    hub.refused("unknown-subject", lambda: hub.query("nobody", subject="x" * 22))
    assert hub.provider.calls == [] and hub.audit.appended == []


@pytest.mark.parametrize(
    ("provider", "slug", "status"),
    [
        (FakeProvider(status=503), "bad-provider-answer", 502),
        (FakeProvider(status=500), "bad-provider-answer", 502),
        (FakeProvider(failure=Problem("provider-timeout", "no answer in 2 s")), "provider-timeout", 504),
        (
            FakeProvider(failure=Problem("bad-provider-answer", "the signature does not verify")),
            "bad-provider-answer",
            502,
        ),
        (FakeProvider(failure=Problem("provider-unavailable", "unreachable")), "provider-unavailable", 503),
    ],
)
def test_a_provider_error_is_answered_as_a_problem_and_nothing_is_recorded(provider, slug, status):
    hub = Hub(provider)
    assert hub.refused(slug, lambda: hub.query("aiko")).status == status
    assert len(provider.calls) == 1 and hub.audit.appended == []


def test_a_subject_the_provider_does_not_hold_is_unknown_and_not_recorded():
    hub = Hub()
    hub.refused("unknown-subject", lambda: hub.query("emi"))  # known to the number service, not to the registry
    assert len(hub.provider.calls) == 1 and hub.audit.appended == []


def test_a_protected_persons_address_is_withheld():
    answer = Hub().query("daiki", attributes=("family_name", "address"))
    assert answer["data"] == {"family_name": "大木"} and answer["withheld"] == ["address"]


def test_household_members_are_converted_to_the_consumers_pseudonyms_and_each_is_recorded():
    hub = Hub()
    answer = hub.query("aiko", attributes=("members",), dataset="household")
    assert answer["data"] == {"members": [mine("botan")]}
    subjects = [(r.subject, r.attributes) for r in hub.audit.appended]
    assert subjects == [(audited("aiko"), ("members",)), (audited("botan"), ("members",))]


def test_concurrent_reads_share_one_provider_call_and_each_is_answered_and_recorded_as_its_own():
    hub = Hub()
    answers = hub.concurrent(["aiko", "daiki", "emi", "aiko"])  # emi is not held; aiko asked twice
    # one call, each subject once, under the provider's pseudonyms
    asked = {
        "member": str(PROVIDER),
        "dataset": "person",
        "attributes": ["family_name", "address"],
        "subjects": [theirs(p) for p in ("aiko", "daiki", "emi")],
    }
    assert hub.provider.calls == [("/v1/bulk", asked)]
    aiko, daiki, emi, aiko_again = answers
    assert aiko["data"] == aiko_again["data"] == {"family_name": "青木", "address": "北見市1"}
    assert (daiki["data"], daiki["withheld"]) == ({"family_name": "大木"}, ["address"])  # protected
    assert isinstance(emi, Problem) and emi.type.slug == "unknown-subject"
    assert [a["request_id"] for a in (aiko, daiki, aiko_again)] == ["req-0", "req-1", "req-3"]
    # one record per answered query, each with its own request id and subject; none for the unknown subject
    assert sorted((r.request_id, r.subject) for r in hub.audit.appended) == [
        ("req-0", audited("aiko")),
        ("req-1", audited("daiki")),
        ("req-3", audited("aiko")),
    ]


def test_a_failed_shared_call_fails_each_of_its_queries_and_records_nothing():
    hub = Hub(FakeProvider(status=503))
    answers = hub.concurrent(["aiko", "chiyo"])
    assert [(a.type.slug, a.status) for a in answers] == [("bad-provider-answer", 502)] * 2
    assert hub.provider.calls[0][0] == "/v1/bulk" and hub.audit.appended == []


def test_concurrent_reads_of_a_dataset_that_names_persons_are_not_shared():
    hub = Hub()
    answers = hub.concurrent(["aiko", "botan"], attributes=("members",), dataset="household", purpose=AFFAIR)
    assert [path for path, _ in hub.provider.calls] == ["/v1/query", "/v1/query"]
    assert [a["data"]["members"] for a in answers] == [[mine("botan")], [mine("aiko")]]


def test_a_submission_is_forwarded_with_its_payload_and_a_refusal_passes_the_reason_on():
    hub = Hub()
    answer = hub.query("aiko", attributes=("received",), dataset="application", payload={"form": "x"})
    assert answer["data"] == {"received": True}
    assert hub.provider.calls[0][1]["payload"] == {"form": "x"} and hub.provider.calls[0][1]["purpose"] == AFFAIR
    refusing = Hub(FakeProvider(status=422))
    problem = refusing.refused(
        "submission-refused",
        lambda: refusing.query("aiko", attributes=("received",), dataset="application", payload={"form": "x"}),
    )
    assert problem.detail == "refused by the node" and refusing.audit.appended == []


def test_a_bulk_list_is_answered_in_the_order_asked_with_only_the_subjects_answered():
    hub = Hub()
    asked = [mine("chiyo"), mine("aiko"), "u" * 22, mine("emi"), mine("daiki"), mine("botan")]
    table = hub.bulk(asked)
    # the unknown pseudonym is not forwarded; the others go under the provider's pseudonyms, in the request's order
    assert hub.provider.calls == [("/v1/bulk", [theirs(p) for p in ("chiyo", "aiko", "emi", "daiki", "botan")])]
    # answered in the order asked (the provider answered in reverse), emi (not held) and the unknown left out
    assert table.column("subject").to_pylist() == [mine(p) for p in ("chiyo", "aiko", "daiki", "botan")]
    assert table.column("family_name").to_pylist() == ["千葉", "青木", "大木", "青木"]
    assert table.column("address").to_pylist() == ["北見市2", "北見市1", None, "北見市1"]  # daiki's withheld
    assert table.column("withheld").to_pylist() == [False, False, True, False]
    assert table.column("audit_record").to_pylist() == [100] * 4
    # one record naming every subject answered, under the audit pseudonyms
    (batch,) = hub.audit.appended
    assert isinstance(batch, SubjectBatch) and batch.template.kind == "bulk-item"
    assert sorted(batch.subjects.to_pylist()) == sorted(audited(p) for p in ("chiyo", "aiko", "daiki", "botan"))


@pytest.mark.parametrize(
    "change",
    [
        {"consumer": OTHER_CITY},
        {"attributes": ("family_name", "income")},
        {"purpose": "another-affair"},
    ],
)
def test_a_bulk_no_rule_allows_is_refused_and_nothing_is_forwarded_or_recorded(change):
    hub = Hub()
    hub.refused("not-allowed", lambda: hub.bulk([mine("aiko")], **change))
    assert hub.numbers.calls == [] and hub.provider.calls == [] and hub.audit.appended == []


def test_a_scan_the_rule_does_not_allow_is_refused_before_the_provider_is_asked():
    hub = Hub()
    req = BulkRequest(provider=str(PROVIDER), dataset="person", attributes=["family_name"], purpose=AFFAIR, scan=True)
    hub.refused("not-allowed", lambda: asyncio.run(hub.exchange.bulk(CONSUMER, req, "req-3")))
    assert hub.provider.calls == [] and hub.audit.appended == []


def test_a_bulk_provider_error_is_answered_as_a_problem_and_nothing_is_recorded():
    hub = Hub(FakeProvider(status=500))
    hub.refused("bad-provider-answer", lambda: hub.bulk([mine("aiko"), mine("botan")]))
    assert hub.audit.appended == []


def _notices(title_ja: str) -> NotifyRequest:
    notice = {
        "subject": mine("aiko"),
        "key": "k1",
        "title_ja": title_ja,
        "title_en": "t",
        "body_ja": "b",
        "body_en": "b",
    }
    return NotifyRequest(provider=str(PROVIDER), purpose=AFFAIR, service="s", notices=[notice])


def _notify_json(hub: Hub, title_ja: str):
    return asyncio.run(hub.exchange.notify(CONSUMER, _notices(title_ja), "req-4"))


def _notify_arrow(hub: Hub, title_ja: str):
    req = _notices(title_ja)
    table = pa.Table.from_pylist([{k: v for k, v in n.model_dump().items() if v is not None} for n in req.notices])
    routing = {"provider": req.provider, "purpose": req.purpose, "service": req.service}
    return asyncio.run(hub.exchange.notify_rows(CONSUMER, routing, table, "req-4"))


@pytest.mark.parametrize("send", [_notify_json, _notify_arrow], ids=["json", "arrow"])
def test_notices_with_an_empty_title_are_refused_as_malformed_after_authorisation(send):
    hub = Hub()
    # no rule lets the consumer send notices: refused as such, whatever the notices say
    hub.refused("not-allowed", lambda: send(hub, ""))
    hub.exchange.rules = RuleBook([_rule("notices", "inbox", ("notice",))], [])
    problem = hub.refused("malformed-request", lambda: send(hub, ""))
    assert "Japanese title" in problem.detail
    assert hub.numbers.calls == [] and hub.provider.calls == [] and hub.audit.appended == []


def test_an_exchange_is_counted_under_the_rule_that_allowed_it_with_its_outcome():
    hub, metrics = Hub(), HubMetrics()

    async def ask(person: str, purpose: str = AFFAIR) -> None:  # as the route does, in the request's own task
        req = QueryRequest(
            subject=mine(person), attributes=["family_name"], provider=str(PROVIDER), dataset="person", purpose=purpose
        )
        try:
            await hub.exchange.query(CONSUMER, req, "req-1")
            metrics.exchanged("query", "ok")
        except Problem as problem:
            metrics.exchanged("query", problem.type.slug)

    for person, purpose in (("aiko", AFFAIR), ("emi", AFFAIR), ("aiko", "no-such-affair")):
        asyncio.run(ask(person, purpose))
    counted = metrics.registry.get_sample_value
    assert counted("publicmesh_hub_exchanges_total", {"kind": "query", "rule": "person", "outcome": "ok"}) == 1
    unknown = {"kind": "query", "rule": "person", "outcome": "unknown-subject"}  # refused after the rule allowed it
    assert counted("publicmesh_hub_exchanges_total", unknown) == 1
    refused = {"kind": "query", "rule": "none", "outcome": "not-allowed"}
    assert counted("publicmesh_hub_exchanges_total", refused) == 1
