"""Offers (給付の案内): one per eligible unit of a published service, with its pre-filled form, written for a whole
municipality at once. A unit offered before (an earlier publish) is left alone, so re-publishing offers nothing
twice; the database's one-offer-per-unit constraint guards the same under a race.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import numpy as np
import orjson
import polars as pl
from sqlalchemy import Connection, Engine, Select, insert, select, union_all
from sqlalchemy.exc import IntegrityError

from publicmesh.services import forms
from publicmesh.services.store import offer_shapes, offers, utc_now
from publicmesh.storage import bulk_cache

COLUMNS = ("id", "service_id", "unit_key", "subject", "tenant", "amount_yen", "form", "version", "offered_at")


def store_offers(engine: Engine, doc: dict, code: str, eligible: pl.DataFrame,
                 unit_key: str | None = None) -> pl.DataFrame:
    """The new offers of these eligible units (columns COLUMNS), written in one transaction. ``unit_key``
    replaces the household as the unit (a birth-triggered service is offered once per birth)."""
    if eligible.height == 0:
        return pl.DataFrame(schema={c: pl.Utf8 for c in COLUMNS})
    audit_columns = [c for c in eligible.columns if c.endswith("._audit")]
    key = pl.lit(unit_key) if unit_key is not None else pl.col("subject" if doc["unit"] == "person" else "household")
    shape = form_shape(doc)
    shape_id, shared = shape_record(shape)
    units = eligible.select(
        key.alias("unit_key"),
        "subject", pl.col("amount").cast(pl.Int64).alias("amount_yen"),
        offer_forms(shape, shape_id, eligible, audit_columns).alias("form"))
    with engine.begin() as conn:
        taken = pl.DataFrame(conn.execute(select(offers.c.unit_key, offers.c.subject).where(
            offers.c.service_id == doc["id"], offers.c.tenant == code)).all(), schema=["unit_key", "subject"],
            orient="row")
        units = units.filter(~pl.col("unit_key").is_in(taken["unit_key"].implode()))
        if unit_key is None:
            # A household is offered to its head once, whatever its key was when first offered (a key made
            # from member lists before the registry named heads differs for a household without a head).
            units = units.filter(~pl.col("subject").is_in(taken["subject"].implode()))
        units = units.unique("unit_key", keep="first", maintain_order=True).sort("unit_key")
        now = utc_now()
        fresh = units.with_columns(pl.Series("id", offer_ids(units.height)), pl.lit(doc["id"]).alias("service_id"),
                                   pl.lit(code).alias("tenant"), pl.lit(int(doc["version"])).alias("version"),
                                   pl.lit(now).alias("offered_at")).select(COLUMNS)
        if fresh.height:
            _store_shape(conn, shape_id, shared)
            with bulk_cache(conn):
                _insert(conn, fresh)
    return fresh


def shape_record(shape: tuple[dict, list[dict], dict]) -> tuple[str, dict]:
    """The id (its digest) and the stored form of what every offer of the definition shares."""
    title, fields, typed = shape
    shared = {"title_ja": title["ja"], "title_en": title["en"], **typed,
              "fields": [{"name": f["name"], "label_ja": f["label"]["ja"], "label_en": f["label"]["en"],
                          "format": f.get("format", "text")} for f in fields]}
    return hashlib.sha256(orjson.dumps(shared, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32], shared


def _store_shape(conn: Connection, shape_id: str, shared: dict) -> None:
    if conn.execute(select(offer_shapes.c.id).where(offer_shapes.c.id == shape_id)).first() is None:
        with conn.begin_nested():  # a publish racing this one stores the same row: either is it
            try:
                conn.execute(insert(offer_shapes).values(id=shape_id, shape=shared))
            except IntegrityError:
                pass


_SHAPES: dict[str, dict] = {}  # id → shape: a shape never changes (its id is its digest)


def full_form(conn: Connection, form: dict) -> dict:
    """An offer's form as the person sees it and signs it (offer_form's): a published offer stores its values in
    the order of its shape's fields, the exchange records and the shape's id; any other form is whole already."""
    if "shape" not in form:
        return form
    shared = _SHAPES.get(form["shape"])
    if shared is None:
        shared = conn.execute(select(offer_shapes.c.shape).where(offer_shapes.c.id == form["shape"])).scalar_one()
        _SHAPES[form["shape"]] = shared
    fields = [{**field, "value": value} for field, value in zip(shared["fields"], form["values"])]
    return {**shared, "fields": fields, "audit_records": form["audit_records"]}


def with_full_form(conn: Connection, offer) -> dict:
    """An offer row as a dict, its form whole (full_form)."""
    offer = dict(offer)
    return {**offer, "form": full_form(conn, offer["form"])}


def offered_to(subject: str) -> Select:
    """The offers a person receives: as the unit itself (nearly all) by one_offer_per_unit, the others (a birth's
    offer, to the household's head) by offers_to_others."""
    return union_all(select(offers).where(offers.c.unit_key == subject, offers.c.subject == subject),
                     select(offers).where(offers.c.subject == subject, offers.c.subject != offers.c.unit_key))


def offer_ids(count: int) -> list[str]:
    """Unguessable ids that sort by time: a millisecond clock, a counter and randomness. New offers then go to
    the end of the primary key's index, in pages the cache already holds, instead of all over it."""
    clock = f"{time.time_ns() // 1_000_000:012x}"
    noise = np.frombuffer(os.urandom(4 * count), dtype=np.uint32) if count else np.array([], dtype=np.uint32)
    return [f"{clock}{i:06x}{r:08x}" for i, r in zip(range(count), noise.tolist())]


def _insert(conn: Connection, fresh: pl.DataFrame) -> None:
    """Offers whose form is JSON text already, straight to the driver in key order: no per-row work in
    SQLAlchemy (a unit offered meanwhile is skipped)."""
    postgres = conn.dialect.name == "postgresql"
    mark = "%s" if postgres else "?"
    values = [f"CAST({mark} AS JSON)" if c == "form" and postgres else mark for c in COLUMNS]
    if not postgres:  # the text sqlite3's datetime adapter would write for each row, written once
        fresh = fresh.with_columns(pl.lit(fresh["offered_at"][0].isoformat(" ")).alias("offered_at"))
    conn.exec_driver_sql(
        f"INSERT INTO offers ({', '.join(COLUMNS)}) VALUES ({', '.join(values)}) "
        "ON CONFLICT (service_id, unit_key) DO NOTHING", fresh.rows())


def form_shape(doc: dict) -> tuple[dict, list[dict], dict]:
    """What every offer of the service shares: its titles, the fields the mesh fills in, and what the person
    types (no agency holds it)."""
    typed_fields = forms.descriptions(doc.get("form", []))
    return (doc["title"], [f for f in doc.get("form", []) if "source" in f],
            {"typed_fields": typed_fields} if typed_fields else {})


def offer_form(shape: tuple[dict, list[dict], dict], unit: dict, audit_columns: list[str]) -> dict:
    """The pre-filled form of one eligible unit (a row of decide()), with the exchange records that fetched it."""
    _, shared = shape_record(shape)
    return {**shared, "fields": [{**f, "value": _plain(unit[f"form.{f['name']}"])} for f in shared["fields"]],
            "audit_records": [int(unit[c]) for c in audit_columns if unit[c] is not None]}


def offer_forms(shape: tuple[dict, list[dict], dict], shape_id: str, eligible: pl.DataFrame,
                audit_columns: list[str]) -> pl.Expr:
    """The stored form of every row at once, as JSON text: the shape's id, the values encoded by Polars in the
    order of its fields, the exchange records (full_form makes offer_form's of it)."""
    _, fields, _ = shape
    values = [_json_of(pl.col(f"form.{f['name']}")) for f in fields]
    audit = (_json_of(pl.concat_list([pl.col(c).cast(pl.Int64) for c in audit_columns]).list.drop_nulls())
             if audit_columns else pl.lit("[]"))
    parts: list[pl.Expr] = [pl.lit(f'{{"shape":"{shape_id}","values":[')]
    for i, value in enumerate(values):
        parts += [pl.lit(","), value] if i else [value]
    return pl.concat_str([*parts, pl.lit('],"audit_records":'), audit, pl.lit("}")])


def _json_of(column: pl.Expr) -> pl.Expr:
    """The column's values as JSON text (a date as its ISO string, as offer_form writes it)."""
    return pl.struct(column.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
