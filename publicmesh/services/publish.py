"""Publishing a service: validate → fetch what the rules need, one municipality at a time, through the hub →
evaluate eligibility and amounts next to the data (Polars) → one offer and one notice per eligible unit →
applications for people with a prior intent → automatic decisions → payout files.

Runs as the services member (GOV/digital/services) on the services part's own store. Re-publishing is safe:
offers, notices and applications are unique per service and unit, so only what is new is created.
"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
import yaml
from sqlalchemy import Connection, Engine, insert, select

from publicmesh.mesh.client import MeshClient
from publicmesh.mesh.members import PORTAL
from publicmesh.services import applications as apps
from publicmesh.services import decisions, forms
from publicmesh.services.store import offers, publications, utc_now

SERVICES_MEMBER = "GOV/digital/services"
FETCH_AHEAD = 2  # municipalities fetched at once
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class Summary:
    service: str
    version: int
    residents: int = 0
    eligible: int = 0
    new_offers: int = 0
    notices: int = 0
    prior_intent_applications: int = 0
    total_yen: int = 0
    by_municipality: dict[str, dict] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    payout: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


def purpose_of(service_id: str) -> str:
    return f"specified-public-benefit:{service_id}"


def fetch_municipality(client: MeshClient, doc: dict, code: str, subjects: list[str] | None = None) -> pl.DataFrame:
    """The definition's data for every resident of one municipality (or only for ``subjects``): a scan of the
    first source, then one bulk exchange per other source for those subjects; columns named 'source.attribute',
    plus 'subject' and 'household' (the household key, the same for every member: see _household_key)."""
    purpose = purpose_of(doc["id"])
    frame: pl.DataFrame | None = None
    for name, source in doc["data"].items():
        provider = source["provider"].replace("{code}", code).replace("*", code)
        table = client.bulk(provider, source["dataset"], subjects, list(source["attributes"]), purpose)
        part = _columns(pl.from_arrow(table), name, source)
        if frame is None:
            frame, subjects = part, part["subject"].to_list()
        else:
            frame = frame.join(part, on="subject", how="left")
        if not subjects:
            break
    frame = frame if frame is not None else pl.DataFrame({"subject": []}, schema={"subject": pl.Utf8})
    return frame.with_columns(_household_key(frame))


def _columns(table: pl.DataFrame, name: str, source: dict) -> pl.DataFrame:
    kept = ["subject", *source["attributes"]]
    out = table.select(kept).rename({a: f"{name}.{a}" for a in source["attributes"]})
    audit = table.select(pl.col("audit_record").alias(f"{name}._audit")) if "audit_record" in table.columns else None
    if audit is not None:
        out = out.with_columns(audit)
    for column, dtype in out.schema.items():
        if column.endswith("_date") and dtype == pl.Utf8:
            out = out.with_columns(pl.col(column).str.to_date(strict=False))
    return out


def _household_key(frame: pl.DataFrame) -> pl.Expr:
    """The head's pseudonym (世帯主), or the smallest member's when the registry names no head. Not simply the
    smallest member: a newborn joining the household must not give it a new key (and a second offer)."""
    if "household.members" in frame.columns:
        members = pl.col("household.members")
        heads = members.list.eval(pl.element().filter(pl.element().struct.field("relation").is_in(["head", "single"]))
                                  .struct.field("subject")).list.min()
        smallest = members.list.eval(pl.element().struct.field("subject")).list.min()
        return pl.coalesce(heads, smallest, pl.col("subject")).alias("household")
    return pl.col("subject").alias("household")


def publish(engine: Engine, client: MeshClient, path: Path | str, municipalities: list[str], payout_dir: Path, *,
            progress: Progress | None = None, compile_rules=None, load_definition=None,
            on_frame: Callable[[str, pl.DataFrame], None] | None = None) -> Summary:
    """``on_frame(code, frame)`` sees each municipality's fetched frame (the benchmark evaluates it again)."""
    from publicmesh.services.definition import content_hash
    from publicmesh.services.definition import load_definition as default_load

    progress = progress or (lambda *_: None)
    started = time.perf_counter()
    text = Path(path).read_text(encoding="utf-8")
    definition = (load_definition or default_load)(Path(path))
    doc = yaml.safe_load(text)
    compiled = rules_of(doc, compile_rules)
    summary = Summary(doc["id"], int(doc["version"]))
    summary.phases["validate"] = time.perf_counter() - started
    from publicmesh.services.store import metadata

    metadata.create_all(engine)
    new: list[dict] = []
    fields = form_sources(doc)
    # Municipalities are fetched FETCH_AHEAD at a time: while one is evaluated here, the hub and the agencies
    # already answer the next (each is its own process).
    with ThreadPoolExecutor(max_workers=FETCH_AHEAD, thread_name_prefix="publish-fetch") as pool:
        fetched = pool.map(lambda code: (code, fetch_municipality(client, doc, code)), municipalities)
        t0 = time.perf_counter()
        for k, (code, frame) in enumerate(fetched):
            t1 = time.perf_counter()
            if on_frame is not None:
                on_frame(code, frame)
            decided = compiled.decide(frame, doc["unit"], fields)
            eligible = decided.filter(pl.col("eligible"))
            new.extend(_store_offers(engine, doc, code, eligible))
            t2 = time.perf_counter()
            summary.phases["fetch"] = summary.phases.get("fetch", 0) + t1 - t0
            summary.phases["evaluate"] = summary.phases.get("evaluate", 0) + t2 - t1
            summary.residents += frame.height
            summary.eligible += eligible.height
            total = int(eligible["amount"].sum() or 0)
            summary.total_yen += total
            summary.by_municipality[code] = {"residents": frame.height, "eligible": eligible.height,
                                             "total_yen": total}
            progress("evaluate", k + 1, len(municipalities))
            t0 = time.perf_counter()
    summary.new_offers = len(new)
    t3 = time.perf_counter()
    intents = _notify(client, doc, new, progress)
    summary.notices = len(new)
    summary.phases["notify"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    summary.prior_intent_applications = decide_by_intent(engine, client, doc, [o for o, flag in zip(new, intents) if flag])
    summary.phases["decide"] = time.perf_counter() - t4
    with engine.begin() as conn:
        if conn.execute(select(publications.c.version).where(publications.c.service_id == doc["id"],
                                                             publications.c.version == int(doc["version"]))).first() is None:
            conn.execute(insert(publications).values(
                service_id=doc["id"], version=int(doc["version"]), content_hash=content_hash(definition),
                definition=text, published_at=utc_now(), eligible=summary.eligible, total_yen=summary.total_yen))
    if doc.get("payout", {}).get("method") == "zengin-sogo-furikomi":
        t5 = time.perf_counter()
        from publicmesh.services.payout import pay_approved

        summary.payout = pay_approved(engine, client, doc, payout_dir, progress=progress)
        if summary.payout["paid"]:  # their payout notices, written with the file
            decisions.NoticeSender(engine, client).send_all()
        summary.phases["payout"] = time.perf_counter() - t5
    summary.phases["total"] = time.perf_counter() - started
    return summary


def rules_of(doc: dict, compile_rules=None):
    """The definition's rules compiled at its reference date (``as_of``)."""
    if compile_rules is None:
        from publicmesh.services.rules import compile_rules
    as_of = doc["as_of"] if isinstance(doc["as_of"], dt.date) else dt.date.fromisoformat(str(doc["as_of"]))
    return compile_rules(doc["rules"], doc.get("tables") or {}, as_of)


def form_sources(doc: dict) -> dict[str, str]:
    """The form's fields that come from the mesh, as the columns decide() adds: form.<name> → source."""
    return {f"form.{f['name']}": str(f["source"]) for f in doc.get("form", []) if "source" in f}


def offer(engine: Engine, client: MeshClient, doc: dict, code: str, eligible: pl.DataFrame,
          unit_key: str | None = None) -> int:
    """What publishing does for a municipality, for a few eligible units (e.g. a birth's household): their
    offers (new ones only), one notice each, and applications for those with a prior intent. Returns how
    many offers are new."""
    created = _store_offers(engine, doc, code, eligible, unit_key)
    intents = _notify(client, doc, created, lambda *_: None)
    decide_by_intent(engine, client, doc, [o for o, flag in zip(created, intents) if flag])
    return len(created)


def _store_offers(engine: Engine, doc: dict, code: str, eligible: pl.DataFrame, unit_key: str | None = None) -> list[dict]:
    """One offer per eligible unit; units that already have one (an earlier publish) are left alone.
    ``unit_key`` replaces the household as the unit (a birth-triggered service is offered once per birth).
    The forms are written as JSON text made by Polars (offer_forms), in one statement for all the rows."""
    if eligible.height == 0:
        return []
    audit_columns = [c for c in eligible.columns if c.endswith("._audit")]
    units = eligible.select(
        pl.col("household").alias("unit_key") if unit_key is None else pl.lit(unit_key).alias("unit_key"),
        "subject", pl.col("amount").cast(pl.Int64).alias("amount_yen"),
        offer_forms(form_shape(doc), eligible, audit_columns).alias("form"))
    with engine.begin() as conn:
        existing = set(conn.execute(select(offers.c.unit_key).where(offers.c.service_id == doc["id"],
                                                                    offers.c.tenant == code)).scalars())
        units = units.filter(~pl.col("unit_key").is_in(list(existing))).unique("unit_key", keep="first",
                                                                                  maintain_order=True)
        now, version = utc_now(), int(doc["version"])
        fresh = [{"id": secrets.token_hex(8), "service_id": doc["id"], "tenant": code, "version": version,
                  "offered_at": now, **row} for row in units.iter_rows(named=True)]
        if fresh:
            _insert_offers(conn, fresh)
    return fresh


_OFFER_COLUMNS = ("id", "service_id", "unit_key", "subject", "tenant", "amount_yen", "form", "version", "offered_at")


def _insert_offers(conn: Connection, rows: list[dict]) -> None:
    """Offers whose form is JSON text already, straight to the driver: no per-row work in SQLAlchemy (a unit
    offered meanwhile is skipped)."""
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    values = [f"CAST({mark} AS JSON)" if c == "form" and postgres else mark for c in _OFFER_COLUMNS]
    offered_at = offers.c.offered_at.type.bind_processor(conn.dialect) or (lambda v: v)
    conn.exec_driver_sql(
        f"INSERT INTO offers ({', '.join(_OFFER_COLUMNS)}) VALUES ({', '.join(values)}) "
        "ON CONFLICT (service_id, unit_key) DO NOTHING",
        [tuple(offered_at(r[c]) if c == "offered_at" else r[c] for c in _OFFER_COLUMNS) for r in rows])


def form_shape(doc: dict) -> tuple[dict, list[dict], dict]:
    """What every offer of the service shares: its titles, the fields the mesh fills in, and what the person
    types (no agency holds it)."""
    typed_fields = forms.descriptions(doc.get("form", []))
    return (doc["title"], [f for f in doc.get("form", []) if "source" in f],
            {"typed_fields": typed_fields} if typed_fields else {})


def offer_form(shape: tuple[dict, list[dict], dict], unit: dict, audit_columns: list[str]) -> dict:
    """The pre-filled form of one eligible unit (a row of decide()), with the exchange records that fetched it."""
    title, fields, typed = shape
    return {"title_ja": title["ja"], "title_en": title["en"],
            "fields": [{"name": f["name"], "label_ja": f["label"]["ja"], "label_en": f["label"]["en"],
                        "format": f.get("format", "text"), "value": _plain(unit[f"form.{f['name']}"])} for f in fields],
            "audit_records": [int(unit[c]) for c in audit_columns if unit[c] is not None], **typed}


def offer_forms(shape: tuple[dict, list[dict], dict], eligible: pl.DataFrame, audit_columns: list[str]) -> pl.Expr:
    """offer_form of every row at once, as JSON text: the shared parts written once, each row's values encoded
    by Polars and put in their places."""
    title, fields, typed = shape
    slot = "\u0000slot{}\u0000"
    template = orjson.dumps({"title_ja": title["ja"], "title_en": title["en"], "fields": [
        {"name": f["name"], "label_ja": f["label"]["ja"], "label_en": f["label"]["en"], "format": f.get("format", "text"),
         "value": slot.format(i)} for i, f in enumerate(fields)], "audit_records": slot.format("audit"), **typed}).decode()
    values = [_json_of(pl.col(f"form.{f['name']}")) for f in fields]
    values.append(_json_of(pl.concat_list([pl.col(c).cast(pl.Int64) for c in audit_columns]).list.drop_nulls())
                  if audit_columns else pl.lit("[]"))
    parts: list[pl.Expr] = []
    rest = template
    for i, value in zip([*range(len(fields)), "audit"], values):
        before, rest = rest.split(orjson.dumps(slot.format(i)).decode(), 1)
        parts += [pl.lit(before), value]
    return pl.concat_str([*parts, pl.lit(rest)])


def _json_of(column: pl.Expr) -> pl.Expr:
    """The column's values as JSON text (a date as its ISO string, as offer_form writes it)."""
    return pl.struct(column.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _notify(client: MeshClient, doc: dict, new: list[dict], progress: Progress, batch: int = 50_000) -> list[bool]:
    """One notice per new offer into the person's portal inbox (through the hub); who has a prior intent."""
    text = doc["notices"]["eligible"]
    flags: list[bool] = []
    for start in range(0, len(new), batch):
        chunk = new[start:start + batch]
        notices = [{"subject": o["subject"], "key": f"{doc['id']}:{o['unit_key']}:eligible",
                    "title_ja": text["title"]["ja"], "title_en": text["title"]["en"],
                    "body_ja": text["body"]["ja"].format(amount=f"{o['amount_yen']:,}"),
                    "body_en": text["body"]["en"].format(amount=f"{o['amount_yen']:,}"),
                    "link": f"/applications/offers/{o['id']}"} for o in chunk]
        answer = client.notify(str(PORTAL), purpose_of(doc["id"]), doc["id"], notices)
        flags.extend(answer["prior_intent"])
        progress("notify", min(start + batch, len(new)), len(new))
    return flags


def decide_by_intent(engine: Engine, client: MeshClient, doc: dict, chosen: list[dict]) -> int:
    """Applications by prior intent, decided by the rules where the workflow says so; the approval notices written
    with them are sent right away (once each: a notice sent is marked, and the inbox keeps one per key)."""
    created = _apply_by_intent(engine, doc, chosen)
    if created:
        decisions.NoticeSender(engine, client).send_all()
    return created


def _apply_by_intent(engine: Engine, doc: dict, chosen: list[dict]) -> int:
    """People who said in advance 'pay me what I am eligible for' get an application without asking."""
    workflow = doc.get("workflow", {})
    created = 0
    with engine.begin() as conn:
        for offer in chosen:
            try:
                apps.create(conn, offer, "prior-intent", signature=None, review_over=int(workflow.get("review_over", 0)),
                            automatic=bool(workflow.get("automatic", False)), actor="prior-intent", definition=doc)
                created += 1
            except apps.Problem:
                continue  # already applied
    return created

