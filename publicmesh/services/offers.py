"""Offers (給付の案内): one per eligible unit of a published service, with its pre-filled form, written for a whole
municipality at once. A unit offered before (an earlier publish) is left alone: the database's one-offer-per-unit
index refuses a second offer, so re-publishing offers nothing twice, under a race too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
from sqlalchemy import Connection, Engine, Select, insert, select, union_all
from sqlalchemy.exc import IntegrityError

from publicmesh.applications import forms
from publicmesh.services.store import offer_shapes, offers, utc_now
from publicmesh.storage.bulk import bulk_rows_for

COLUMNS = ("id", "service_id", "unit_key", "subject", "tenant", "amount_yen", "form", "version", "offered_at")


def store_offers(
    engine: Engine, doc: dict, code: str, eligible: pl.DataFrame, unit_key: str | None = None
) -> pl.DataFrame:
    """The new offers of these eligible units (columns COLUMNS), all written in one transaction or none. ``unit_key``
    replaces the household as the unit (a birth-triggered service is offered once per birth)."""
    if eligible.height == 0:
        return pl.DataFrame(schema={c: pl.Utf8 for c in COLUMNS})
    audit_columns = [c for c in eligible.columns if c.endswith("._audit")]
    key = pl.lit(unit_key) if unit_key is not None else pl.col("subject" if doc["unit"] == "person" else "household")
    shape = form_shape(doc)
    shape_id, shared = shape_record(shape)
    units = eligible.select(
        key.alias("unit_key"), "subject", "amount", *audit_columns, *(f"form.{f['name']}" for f in shape[1])
    )
    with engine.begin() as conn:
        if unit_key is None:
            # A household is offered to its head once, whatever its key was when first offered (a key made
            # from member lists before the registry named heads differs for a household without a head).
            units = units.filter(~pl.col("subject").is_in(_received(conn, doc["id"], units).implode()))
        if units.height:
            _store_shape(conn, shape_id, shared)  # committed before the offers that name it
    # In key order (the first row of a key kept): the one index of random keys is then written page by page.
    units = units.sort("unit_key", maintain_order=True).unique("unit_key", keep="first", maintain_order=True)
    fresh = units.select(
        offer_ids(units.height).alias("id"),
        "unit_key",
        "subject",
        pl.col("amount").cast(pl.Int64).alias("amount_yen"),
        offer_forms(shape, shape_id, units, audit_columns).alias("form"),
    )
    common = {"service_id": doc["id"], "tenant": code, "version": int(doc["version"]), "offered_at": utc_now()}
    if fresh.height and _insert(engine, fresh, common) < fresh.height:
        # units offered before (a publish again): one_offer_per_unit refused them
        with engine.connect() as conn:
            fresh = fresh.filter(pl.col("id").is_in(_stored_ids(conn, fresh["id"]).implode()))
    return fresh.with_columns(pl.lit(v).alias(c) for c, v in common.items()).select(COLUMNS)


def _received(conn: Connection, service_id: str, units: pl.DataFrame) -> pl.Series:
    """Who of these units' people already received an offer of the service for another unit than the one they
    have now (one_offer_per_unit refuses an offer for the same one): offers to someone other than their own unit,
    and the offers of those whose unit is now another."""
    found = (
        conn.execute(
            select(offers.c.subject).where(offers.c.subject != offers.c.unit_key, offers.c.service_id == service_id)
        )
        .scalars()
        .all()
    )
    moved = units.filter(pl.col("unit_key") != pl.col("subject"))["subject"].unique().to_list()
    for start in range(0, len(moved), 10_000):  # a few, but each a bound value
        found += (
            conn.execute(
                select(offers.c.subject).where(
                    offers.c.unit_key.in_(moved[start : start + 10_000]), offers.c.service_id == service_id
                )
            )
            .scalars()
            .all()
        )
    return pl.Series("subject", found, dtype=pl.Utf8)


def _stored_ids(conn: Connection, ids: pl.Series) -> pl.Series:
    """Which of these ids (of one batch: they are consecutive) the store holds."""
    return pl.Series(
        "id",
        conn.execute(select(offers.c.id).where(offers.c.id.between(ids.min(), ids.max()))).scalars().all(),
        dtype=pl.Utf8,
    )


def shape_record(shape: tuple[dict, list[dict], dict]) -> tuple[str, dict]:
    """The id (its digest) and the stored form of what every offer of the definition shares."""
    title, fields, typed = shape
    shared = {
        "title_ja": title["ja"],
        "title_en": title["en"],
        **typed,
        "fields": [
            {
                "name": f["name"],
                "label_ja": f["label"]["ja"],
                "label_en": f["label"]["en"],
                "format": f.get("format", "text"),
            }
            for f in fields
        ],
    }
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
    return union_all(
        select(offers).where(offers.c.unit_key == subject, offers.c.subject == subject),
        select(offers).where(offers.c.subject == subject, offers.c.subject != offers.c.unit_key),
    )


_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def offer_ids(count: int) -> pl.Series:
    """Unguessable ids that sort by time: a millisecond clock (12 hex digits), a counter (6) and 32 random bits
    (8). New offers then go to the end of the id's index, in pages the cache already holds."""
    if count >= 1 << 24:
        raise ValueError(f"{count} offers at once: the counter has 6 hex digits")
    tail = np.empty((count, 7), dtype=np.uint8)  # the counter's 3 bytes (big-endian: they sort), 4 random ones
    tail[:, :3] = np.arange(count, dtype=">u4").view(np.uint8).reshape(count, 4)[:, 1:]
    tail[:, 3:] = np.frombuffer(os.urandom(4 * count), dtype=np.uint8).reshape(count, 4)
    text = np.empty((count, 26), dtype=np.uint8)
    text[:, :12] = np.frombuffer(f"{time.time_ns() // 1_000_000:012x}".encode(), dtype=np.uint8)
    text[:, 12::2] = _HEX[tail >> 4]
    text[:, 13::2] = _HEX[tail & 15]
    offsets = np.arange(0, 26 * (count + 1), 26, dtype=np.int32)
    return pl.Series("id", pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(text)))


def _insert(engine: Engine, fresh: pl.DataFrame, common: dict) -> int:
    """Offers whose form is JSON text already, in key order, with ``common``, what all of them share, in one
    transaction; how many were new (a unit offered before is skipped)."""
    return bulk_rows_for(engine).write(engine, offers, fresh.to_arrow(), key=["unit_key", "service_id"], same=common)


def form_shape(doc: dict) -> tuple[dict, list[dict], dict]:
    """What every offer of the service shares: its titles, the fields the mesh fills in, and what the person
    types (no agency holds it)."""
    typed_fields = forms.descriptions(doc.get("form", []))
    return (
        doc["title"],
        [f for f in doc.get("form", []) if "source" in f],
        {"typed_fields": typed_fields} if typed_fields else {},
    )


def offer_form(shape: tuple[dict, list[dict], dict], unit: dict, audit_columns: list[str]) -> dict:
    """The pre-filled form of one eligible unit (a row of decide()), with the exchange records that fetched it."""
    _, shared = shape_record(shape)
    return {
        **shared,
        "fields": [{**f, "value": _plain(unit[f"form.{f['name']}"])} for f in shared["fields"]],
        "audit_records": [int(unit[c]) for c in audit_columns if unit[c] is not None],
    }


def offer_forms(
    shape: tuple[dict, list[dict], dict], shape_id: str, eligible: pl.DataFrame, audit_columns: list[str]
) -> pl.Expr:
    """The stored form of every row at once, as JSON text: the shape's id, the values encoded by Polars in the
    order of its fields, the exchange records (full_form makes offer_form's of it)."""
    _, fields, _ = shape
    values = [_json_of(pl.col(f"form.{f['name']}"), eligible.schema[f"form.{f['name']}"]) for f in fields]
    # the records' positions joined as text: a tenth of the time of encoding a list of them
    audit = (
        pl.concat_str([pl.col(c).cast(pl.Int64).cast(pl.Utf8) for c in audit_columns], separator=",", ignore_nulls=True)
        if audit_columns
        else pl.lit("")
    )
    parts: list[pl.Expr] = [pl.lit(f'{{"shape":"{shape_id}","values":[')]
    for i, value in enumerate(values):
        parts += [pl.lit(","), value] if i else [value]
    return pl.concat_str([*parts, pl.lit('],"audit_records":['), audit, pl.lit("]}")])


def _json_of(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """The column's values as JSON text (a date as its ISO string, as offer_form writes it). An integer's text is
    its JSON already: a fifth of the time of encoding it."""
    if dtype.is_integer():
        return column.cast(pl.Utf8).fill_null("null")
    return pl.struct(column.alias("v")).struct.json_encode().str.slice(5).str.strip_suffix("}")


def _plain(value):
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value
