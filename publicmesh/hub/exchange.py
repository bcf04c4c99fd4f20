"""The query path: authenticate → authorize → convert pseudonym → forward → verify answer → audit → answer."""

from __future__ import annotations

import asyncio
import base64
from contextvars import ContextVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from publicmesh.audit import ExchangeRecord, utc_timestamp
from publicmesh.hub import answer_order
from publicmesh.hub.consents import ConsentCheck
from publicmesh.hub.ports import AuditAppender, DatasetCatalog, MemberDirectory, PseudonymConverter, SignedCalls
from publicmesh.hub.reads import ProviderReads
from publicmesh.hub.registry import Member
from publicmesh.hub.rules import AccessRule, RuleBook
from publicmesh.problems import Problem
from publicmesh.protocol import bulk_wire, notices_wire
from publicmesh.protocol.members import AUDIT_DOMAIN, PORTAL, InvalidMemberId, MemberId
from publicmesh.protocol.schemas import BULK_MAX_SUBJECTS, BulkRequest, QueryRequest

# The access rule of the exchange the current request asks for, once one allowed it: for the hub's metrics, which
# the route counts after the exchange (each request is its own task, so its own context).
RULE: ContextVar[str] = ContextVar("rule", default="none")
BULK_CHUNK = BULK_MAX_SUBJECTS  # subjects per call to a provider: one call per request the hub takes


class Exchange:
    """The spine of the hub; its collaborators (ports) are given, so a test can hand it fakes."""

    def __init__(
        self,
        directory: MemberDirectory,
        rules: RuleBook,
        catalog: DatasetCatalog,
        numbers: PseudonymConverter,
        outbound: SignedCalls,
        audit: AuditAppender,
    ):
        self.directory, self.rules, self.catalog = directory, rules, catalog
        self.numbers, self.outbound, self.audit = numbers, outbound, audit
        self.consents = ConsentCheck(directory, numbers, outbound)
        self.reads = ProviderReads(outbound)
        # A municipality's second scan of the same residents takes the first's order (keyed by the handle of their
        # shared conversion), or waits for it while it is being found: both are answered when that conversion is.
        self.scan_orders = answer_order.ScanOrders()

    def _authorize(
        self, consumer: MemberId, provider_text: str, purpose: str, dataset: str, attributes: list[str]
    ) -> tuple[Member, AccessRule]:
        try:
            provider_id = MemberId.parse(provider_text)
        except InvalidMemberId as exc:
            raise Problem("malformed-request", str(exc)) from None
        provider = self.directory.get(provider_id)
        if provider is None:
            raise Problem("unknown-member", f"{provider_text} is not an active member")
        rule = self.rules.authorize(consumer, purpose, provider_id, dataset, attributes)
        if rule is None:
            raise Problem(
                "not-allowed",
                f"no rule lets {consumer} receive {dataset}({', '.join(attributes)}) "
                f"from {provider_id} for {purpose!r}",
            )
        RULE.set(rule.id)
        return provider, rule

    def _record(
        self,
        kind,
        consumer,
        provider,
        dataset,
        attributes,
        rule: AccessRule | None,
        purpose,
        legal_basis,
        subject,
        request_id,
        outcome="ok",
    ) -> ExchangeRecord:
        return ExchangeRecord(
            kind=kind,
            at=utc_timestamp(),
            consumer=str(consumer),
            provider=str(provider),
            dataset=dataset,
            attributes=tuple(attributes),
            purpose=purpose,
            legal_basis=legal_basis,
            subject=subject,
            request_id=request_id,
            outcome=outcome,
        )

    async def query(self, consumer: MemberId, req: QueryRequest, request_id: str) -> dict:
        provider, rule = self._authorize(consumer, req.provider, req.purpose, req.dataset, req.attributes)
        if req.legal_basis and req.legal_basis != rule.legal_basis:
            raise Problem("not-allowed", f"the legal basis of {rule.id} is {rule.legal_basis!r}")
        if (req.payload is not None) != rule.write:
            raise Problem("not-allowed", f"{rule.id} {'needs' if rule.write else 'takes no'} payload")
        dataset = await self.catalog.dataset(provider.id, req.dataset)
        provider_domain = provider.id.pseudonym_domain
        converted = await self.numbers.convert(req.subject, consumer.pseudonym_domain, (provider_domain, AUDIT_DOMAIN))
        if converted[provider_domain] is None:
            raise Problem("unknown-subject", "the subject is not a pseudonym of the consumer's")
        legal_basis = rule.legal_basis
        if rule.basis == "consent":
            found = await self.consents.require(
                req.consent,
                consumer,
                f"{provider.id.system}/{req.dataset}",
                req.purpose,
                converted[AUDIT_DOMAIN],
                request_id,
            )
            legal_basis = f"{rule.legal_basis}（同意 {found['consent']} 第{found['version']}版）"
        if rule.write:
            data, protected = await self._submit(provider, req, converted[provider_domain], request_id)
        else:  # shared with the concurrent reads of the same dataset (reads.ProviderReads)
            read = await self.reads.read(
                provider,
                req.dataset,
                req.attributes,
                converted[provider_domain],
                request_id,
                share=not dataset.get("pseudonym_paths"),  # their bulk answers may name persons by rows
            )
            data, protected = dict(read.data), read.protected
        withheld = withhold(data, protected, dataset, rule)
        embedded = await self._convert_embedded([data], dataset, provider_domain, consumer.pseudonym_domain)
        records = [
            self._record(
                "query",
                consumer,
                provider.id,
                req.dataset,
                req.attributes,
                rule,
                req.purpose,
                legal_basis,
                converted[AUDIT_DOMAIN],
                request_id,
            )
        ]
        records += [
            self._record(
                "query",
                consumer,
                provider.id,
                req.dataset,
                [path],
                rule,
                req.purpose,
                legal_basis,
                audit_subject,
                request_id,
            )
            for path, audit_subject in embedded
        ]
        positions = await self.audit.append_many(records)
        return {
            "request_id": request_id,
            "audit_record": positions[0],
            "provider": str(provider.id),
            "dataset": req.dataset,
            "subject": req.subject,
            "data": data,
            "withheld": withheld,
            "rule": rule.id,
            "legal_basis": legal_basis,
        }

    async def _submit(self, provider: Member, req: QueryRequest, subject: str, request_id: str) -> tuple[dict, bool]:
        """A submission under a write rule, forwarded on its own; the provider's refusal is passed on."""
        forwarded = {
            "member": str(provider.id),
            "dataset": req.dataset,
            "subject": subject,
            "attributes": req.attributes,
            "payload": req.payload,
            "purpose": req.purpose,
        }
        answer = await self.outbound.post(
            provider.base_url, "/v1/query", forwarded, str(provider.id), request_id=request_id
        )
        if answer.status == 404:
            raise Problem("unknown-subject", f"{provider.id} holds no {req.dataset} for this subject")
        if answer.status in (409, 422):  # the provider refused the submission: pass its reason on
            problem = answer.json()
            raise Problem("submission-refused", problem.get("detail", f"{provider.id} refused the submission"))
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status}")
        doc = answer.json()
        return doc["data"], bool(doc.get("protected"))

    async def notify(self, consumer: MemberId, req, request_id: str) -> dict:
        """The JSON form of notify_table (a few notices at a time): the same checks, conversion and record."""
        routing = {"provider": req.provider, "purpose": req.purpose, "service": req.service}
        table = pa.Table.from_pylist([n.model_dump() for n in req.notices])
        flags, delivered = await self.notify_rows(consumer, routing, table, request_id)
        return {"request_id": request_id, "delivered": delivered, "prior_intent": flags.to_pylist()}

    async def notify_rows(
        self, consumer: MemberId, routing: dict[str, str], notices: pa.Table, request_id: str
    ) -> tuple[pa.Array, int]:
        """notify_table of rows not yet checked: the caller is authorised before the rows are read (a caller no
        rule allows learns nothing about them), and a bad row is a malformed-request problem naming it."""
        self._authorize_notices(consumer, routing)
        try:
            rows = notices_wire.checked(notices)
        except notices_wire.MalformedNotices as exc:
            raise Problem("malformed-request", str(exc)) from None
        return await self.notify_table(consumer, routing, rows, request_id)

    async def notify_table(
        self, consumer: MemberId, routing: dict[str, str], notices: pa.Table, request_id: str
    ) -> tuple[pa.Array, int]:
        """Push notices (checked rows, notices_wire) into inboxes, converted to the holder's pseudonyms, in Arrow
        from end to end; one exchange record naming every recipient. Answers, per notice, whether the person has
        a prior intent for the service, and how many notices reached a known person."""
        provider, rule = self._authorize_notices(consumer, routing)
        domain = provider.id.pseudonym_domain
        converted = await self.numbers.convert_arrays(
            notices.column("subject"), consumer.pseudonym_domain, (domain, AUDIT_DOMAIN)
        )
        known = converted[domain].is_valid()
        valid = pc.indices_nonzero(known)
        prior_intent = pa.array(np.zeros(notices.num_rows, dtype=bool))
        if len(valid) == 0:
            return prior_intent, 0
        forwarded = notices.filter(known).set_column(0, "subject", converted[domain].filter(known))
        body = notices_wire.request_body(forwarded, {**routing, "provider": str(provider.id), "sender": str(consumer)})
        answer = await self.outbound.post_bytes(
            provider.base_url,
            "/v1/notices",
            body,
            notices_wire.ARROW_STREAM,
            str(provider.id),
            request_id=request_id,
            timeout_s=300,
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status} to the notices")
        try:
            flags, _ = notices_wire.read_answer(answer.body, len(valid))
        except notices_wire.MalformedNotices as exc:
            raise Problem("bad-provider-answer", f"{provider.id}: {exc}") from None
        await self.audit.append_many(
            [
                self._record(
                    "notice",
                    consumer,
                    provider.id,
                    "inbox",
                    ["notice"],
                    rule,
                    routing["purpose"],
                    rule.legal_basis,
                    "",
                    request_id,
                ).for_subjects(converted[AUDIT_DOMAIN].filter(known))
            ]
        )
        mask = np.zeros(notices.num_rows, dtype=bool)
        mask[valid.to_numpy()] = flags.to_numpy(zero_copy_only=False)
        return pa.array(mask), len(valid)

    def _authorize_notices(self, consumer: MemberId, routing: dict[str, str]) -> tuple[Member, AccessRule]:
        provider, rule = self._authorize(consumer, routing["provider"], routing["purpose"], "inbox", ["notice"])
        if not routing.get("service"):
            raise Problem("malformed-request", "name the service the notices are about")
        return provider, rule

    async def _convert_embedded(
        self, rows: list[dict], dataset: dict, source: str, target: str
    ) -> list[tuple[str, str]]:
        """Pseudonyms inside answers (e.g. household members) in the consumer's domain; returns audit subjects."""
        slots = []  # (container, key, path)
        for row in rows:
            for path in dataset.get("pseudonym_paths", []):
                name, _, field = path.partition("[].")
                value = row.get(name)
                if field and isinstance(value, list):
                    slots += [(item, field, path) for item in value if isinstance(item, dict) and item.get(field)]
                elif isinstance(value, list):
                    slots += [(value, i, path) for i in range(len(value))]
                elif value:
                    slots.append((row, name, path))
        if not slots:
            return []
        converted = await self.numbers.convert_many([c[k] for c, k, _ in slots], source, (target, AUDIT_DOMAIN))
        for (container, key, _), value in zip(slots, converted[target]):
            container[key] = value
        return [(path, audit) for (_, _, path), audit in zip(slots, converted[AUDIT_DOMAIN]) if audit]

    async def records(self, consumer: MemberId, req, audit_log) -> dict:
        """A person's own exchange records; the subject is converted to the audit pseudonym here, never shown."""
        if consumer != PORTAL:
            raise Problem("not-allowed", "only the resident portal reads exchange records, for the person logged in")
        converted = await self.numbers.convert(req.subject, consumer.pseudonym_domain, (AUDIT_DOMAIN,))
        if converted[AUDIT_DOMAIN] is None:
            raise Problem("unknown-subject", "the subject is not a pseudonym of the portal's")
        return await _records_page(audit_log, converted[AUDIT_DOMAIN], req.limit, req.before)

    async def bulk(
        self, consumer: MemberId, req: BulkRequest, request_id: str, subjects: pa.ChunkedArray | None = None
    ) -> pa.Table:
        """Bulk query: one exchange record naming every subject answered; rows carry the consumer's pseudonyms.
        The subjects are the request's list, or ``subjects`` (the Arrow form, bulk_wire)."""
        provider, rule = self._authorize(consumer, req.provider, req.purpose, req.dataset, req.attributes)
        if rule.basis == "consent":
            raise Problem("not-allowed", f"{rule.id} rests on each person's consent: query one subject at a time")
        if subjects is None and req.subjects is not None:
            subjects = pa.chunked_array([pa.array(req.subjects, pa.string())])
        if req.scan != (subjects is None):
            raise Problem("malformed-request", "name the subjects, or ask for a scan (scan: true), not both")
        dataset = await self.catalog.dataset(provider.id, req.dataset)
        if req.scan:
            return await self._scan(consumer, provider, rule, dataset, req, request_id)
        provider_domain = provider.id.pseudonym_domain
        subjects = subjects.combine_chunks()
        converted = await self.numbers.convert_arrays(
            subjects, consumer.pseudonym_domain, (provider_domain, AUDIT_DOMAIN)
        )
        known = converted[provider_domain].is_valid()
        valid = pc.indices_nonzero(known)  # rows of the request the provider is asked about
        forwarded = converted[provider_domain].filter(known)
        tables = []
        for start in range(0, len(forwarded), BULK_CHUNK):
            body = bulk_wire.request_body(
                forwarded.slice(start, BULK_CHUNK),
                {"member": str(provider.id), "dataset": req.dataset, "attributes": req.attributes},
            )
            answer = await self.outbound.post_bytes(
                provider.base_url,
                "/v1/bulk",
                body,
                bulk_wire.ARROW_STREAM,
                str(provider.id),
                request_id=f"{request_id}.{start // BULK_CHUNK}",
                timeout_s=300,
            )
            if answer.status != 200:
                raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status} to a bulk query")
            table = pa.ipc.open_stream(answer.body).read_all()
            index = pc.add(_single(table.column("i"), pa.int32()).cast(pa.int64()), start)
            tables.append(table.drop_columns(["i"]).append_column("row", valid.take(index).cast(pa.int64())))
        rows = (
            pa.concat_tables(tables)
            if tables
            else pa.table({"_protected": pa.array([], pa.bool_()), "row": pa.array([], pa.int64())})
        )
        return await self._bulk_answer(consumer, provider, rule, dataset, req, rows, converted, subjects, request_id)

    async def _scan(self, consumer, provider, rule, dataset, req: BulkRequest, request_id: str) -> pa.Table:
        """Every subject of one municipality's dataset, for a rule that allows it; audited like any bulk."""
        if not rule.scan:
            raise Problem("not-allowed", f"{rule.id} does not allow asking for a whole municipality")
        answer = await self.outbound.post(
            provider.base_url,
            "/v1/bulk",
            {"member": str(provider.id), "dataset": req.dataset, "attributes": req.attributes, "scan": True},
            str(provider.id),
            request_id=f"{request_id}.scan",
            timeout_s=300,
        )
        if answer.status != 200:
            raise Problem("bad-provider-answer", f"{provider.id} answered HTTP {answer.status} to a scan")
        table = pa.ipc.open_stream(answer.body).read_all()
        converted, handle = await self.numbers.convert_scan(
            _single(table.column("subject"), pa.string()),
            provider.id.pseudonym_domain,
            (consumer.pseudonym_domain, AUDIT_DOMAIN),
        )
        rows = table.drop_columns(["i", "subject"])  # answered in the order read: no column "row"
        subjects = converted[consumer.pseudonym_domain]
        order_key = None if handle is None else (handle, consumer.pseudonym_domain)  # what the order is a function of
        return await self._bulk_answer(
            consumer, provider, rule, dataset, req, rows, converted, subjects, request_id, order_key
        )

    async def _bulk_answer(
        self, consumer, provider, rule, dataset, req, rows: pa.Table, converted, subjects, request_id, order_key=None
    ) -> pa.Table:
        """The answer kept in Arrow columns: subjects taken by row (``rows`` without a column "row" answer the
        subjects in their order), protected addresses withheld, embedded pseudonyms converted column-wise; then one
        exchange record naming every subject answered. ``order_key``: a scan's, see _answer_order."""
        order = _single(rows.column("row"), pa.int64()) if "row" in rows.column_names else None
        protected = _single(rows.column("_protected"), pa.bool_()).cast(pa.bool_()).fill_null(False)
        # A list's subjects are taken once they are in the request's order (see _in_answer_order)
        columns = {"subject": subjects} if order is None else {}
        address = {a["name"] for a in dataset["attributes"] if a["category"] == "address"}
        withholds = rule.protected_addresses != "allow"
        for name in req.attributes:
            column = _single(rows.column(name)) if name in rows.column_names else pa.nulls(0)
            if name in address and withholds:
                column = pc.if_else(protected, pa.nulls(len(column), column.type), column)
            columns[name] = column
        embedded = []  # (path, audit pseudonyms of the persons named there)
        for path in dataset.get("pseudonym_paths", []):
            name, _, field = path.partition("[].")
            if name in columns and bulk_wire.names_rows_of_answer(rows.schema.field(name)):
                if field or not req.scan:  # rows of one answer: a scan's, which is not cut into chunks
                    raise Problem("bad-provider-answer", f"{provider.id} named persons by rows where it cannot")
                of_rows = subjects if order is None else subjects.take(order)  # the answer's own rows' subjects
                columns[name] = _subjects_of_rows(columns[name], of_rows, provider.id)
            elif name in columns:
                columns[name], audit_subjects = await self._convert_column(
                    columns[name], field, provider.id.pseudonym_domain, consumer.pseudonym_domain
                )
                embedded.append((path, audit_subjects))
        # One record of the exchange naming every subject answered (each person finds it and its proof). A household
        # member embedded in someone's answer is named in a second record when they are not a subject already
        # (a whole-municipality scan answers every member, so there each person is named exactly once).
        answered = (
            converted[AUDIT_DOMAIN]
            if order is None
            else converted[AUDIT_DOMAIN].filter(_positions_mask(order, len(subjects)))
        ).drop_null()
        record = self._record(
            "bulk-item",
            consumer,
            provider.id,
            req.dataset,
            req.attributes,
            rule,
            req.purpose,
            rule.legal_basis,
            "",
            request_id,
        )
        batches = [record.for_subjects(answered, recent=req.scan)] if len(answered) else []  # a scan's tree kept
        for path, audit_subjects in embedded:
            others = pc.unique(audit_subjects.filter(pc.invert(pc.is_in(audit_subjects, value_set=answered))))
            if len(others):
                batches.append(
                    self._record(
                        "bulk-item",
                        consumer,
                        provider.id,
                        req.dataset,
                        [path],
                        rule,
                        req.purpose,
                        rule.legal_basis,
                        "",
                        request_id,
                    ).for_subjects(others)
                )
        # The provider's order is not shown: the answer is ordered while the exchange is recorded (both beside the
        # event loop, where another exchange's work goes on); it leaves only once the record is committed.
        (columns, protected), positions = await asyncio.gather(
            asyncio.to_thread(self._in_answer_order, order, columns, protected, subjects, order_key),
            self.audit.append_many(batches) if batches else _nothing(),
        )
        withheld = withholds and bool(address & set(req.attributes))
        columns["withheld"] = pc.and_(protected, pa.scalar(withheld)) if rows.num_rows else pa.array([], pa.bool_())
        columns["audit_record"] = pa.repeat(
            pa.scalar(positions[0] if len(answered) else None, pa.int64()), rows.num_rows
        )
        return pa.table(columns)

    def _in_answer_order(
        self,
        order: pa.Array | None,
        columns: dict[str, pa.Array],
        protected: pa.Array,
        subjects: pa.Array,
        order_key=None,
    ):
        """The columns and the protected flags in the answer's order; for a list, the subject column put first,
        taken from the request's ``subjects`` at the answered positions in their order (one take, in order)."""
        permutation = self._answer_order(order, columns["subject"] if order is None else None, order_key)
        if permutation is not None:
            columns = {name: column.take(permutation) for name, column in columns.items()}
            protected = protected.take(permutation)
        if order is not None:
            columns = {"subject": subjects.take(order if permutation is None else order.take(permutation)), **columns}
        return columns, protected

    def _answer_order(self, order: pa.Array | None, subjects: pa.Array | None, order_key=None) -> np.ndarray | None:
        """A list answered in the order asked, a scan (``order`` None) sorted by the consumer's pseudonyms: see
        answer_order. A scan presenting the same ``order_key`` as an earlier one (the handle of their shared
        conversion, with the consumer's domain) takes its order, waiting for it when the other is still sorting."""
        if order is not None:
            return answer_order.as_asked(order)
        return self.scan_orders.order(order_key, subjects)

    async def _convert_column(self, column: pa.Array, field: str, source: str, target: str):
        """A column of pseudonyms (or a list column whose items are, or carry in ``field``, pseudonyms) in the
        target domain; returns it and the audit pseudonyms of the persons it names."""
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            items = pc.list_flatten(column)
            inner = items.field(field) if field else items
            converted, audit = await self._convert_strings(inner, source, target)
            if field:
                names = [f.name for f in items.type]
                items = pa.StructArray.from_arrays(
                    [converted if n == field else items.field(n) for n in names], names=names, mask=items.is_null()
                )
            else:
                items = converted
            lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False)
            offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), pa.int32())
            return pa.ListArray.from_arrays(offsets, items, mask=column.is_null()), audit
        return await self._convert_strings(column, source, target)

    async def _convert_strings(self, values: pa.Array, source: str, target: str) -> tuple[pa.Array, pa.Array]:
        """The values in the target domain (null where empty or unknown) and the audit pseudonyms of those known."""
        values = values.cast(pa.string())
        if len(values) == 0 or values.null_count == len(values):
            return pa.nulls(len(values), pa.string()), pa.array([], pa.string())
        # An empty string names nobody: asked as null, so it is answered as null.
        asked = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
        found = await self.numbers.convert_arrays(asked, source, (target, AUDIT_DOMAIN))
        return found[target], found[AUDIT_DOMAIN].drop_null()


def _subjects_of_rows(rows: pa.Array, subjects: pa.Array, provider: MemberId) -> pa.Array:
    """The consumer's pseudonyms of the persons an answer names by their rows in it (bulk_wire.as_rows_of_answer):
    subjects of the answer, so named in its record already."""
    if not pa.types.is_integer(rows.type):
        raise Problem("bad-provider-answer", f"{provider} named persons by rows that are not row numbers")
    try:
        return subjects.take(rows)
    except (IndexError, pa.ArrowException):
        raise Problem("bad-provider-answer", f"{provider} named a person by a row its answer does not have") from None


def _single(column: pa.ChunkedArray, empty_type: pa.DataType | None = None) -> pa.Array:
    """One contiguous array of a column (typed ``empty_type`` when the table has no rows)."""
    if column.num_chunks == 0:
        return pa.array([], empty_type or column.type)
    return column.combine_chunks()


async def _records_page(audit_log, subject: str, limit: int, before: int | None) -> dict:
    def work():
        checkpoint = audit_log.latest_checkpoint()
        found = [e for e in audit_log.entries_for_subject(subject, limit, before) if e.position < checkpoint.tree_size]
        _, proofs = audit_log.inclusion_proofs([e.position for e in found], checkpoint.tree_size)
        return checkpoint, found, proofs

    checkpoint, found, proofs = await asyncio.to_thread(work)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return {
        "checkpoint": {
            "log_id": checkpoint.log_id,
            "tree_size": checkpoint.tree_size,
            "root": b64(checkpoint.root),
            "timestamp": checkpoint.timestamp,
            "signature": b64(checkpoint.signature),
        },
        "records": [
            {
                "position": e.position,
                **{k: v for k, v in e.record.as_dict().items() if k != "subject"},
                "leaf": b64(e.leaf()),
                "inclusion_proof": [b64(h) for h in proofs[e.position]],
                **({"subject_proof": e.batch.proof.as_dict()} if e.batch is not None and e.batch.proof else {}),
            }
            for e in found
            if e.batch is None or e.batch.proof is not None
        ],
    }


def withhold(data: dict, protected: bool, dataset: dict, rule: AccessRule) -> list[str]:
    """Remove address items of a protected person unless the rule explicitly allows them."""
    if not protected or rule.protected_addresses == "allow":
        return []
    address = {a["name"] for a in dataset["attributes"] if a["category"] == "address"}
    withheld = sorted(address & data.keys())
    for name in withheld:
        data.pop(name)
    return withheld


async def _nothing() -> list:
    return []


def _positions_mask(positions: pa.Array, count: int) -> np.ndarray:
    """Which of ``count`` request rows are among the answered ``positions``."""
    mask = np.zeros(count, dtype=bool)
    mask[positions.to_numpy(zero_copy_only=False)] = True
    return mask
