"""What a service reads through the hub, and when: the attributes its rules need for every resident of a
municipality, and those only its form shows, for the eligible units alone (data minimisation: a name is read
only for the people being offered the service).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl

from publicmesh.problems import PROBLEM_TYPES
from publicmesh.protocol.client import HubError, MeshClient

Attributes = dict[str, list[str]]  # data source → attributes
HEAD_ATTRIBUTES = ("head", "members")  # the household attributes a household key is made from, preferred first


@dataclass(frozen=True)
class FetchPlan:
    """Per data source, the attributes read for everyone (``rules``) and for the eligible units (``details``),
    and the form fields that can only be computed once the details are there."""

    rules: Attributes
    details: Attributes
    detail_fields: dict[str, str]  # form.<name> → source, computed on the eligible rows


def plan(doc: dict, compiled) -> FetchPlan:
    """Split the definition's data by what reads it. A form field that aggregates over the household needs every
    member's row, so what it reads is read for everyone."""
    declared = {name: list(source["attributes"]) for name, source in doc["data"].items()}
    everyone = {c for rule in (*compiled.lets, compiled.eligible, compiled.amount) for c in rule.compiled.columns}
    fields = {f"form.{f['name']}": str(f["source"]) for f in doc.get("form", []) if "source" in f}
    used = {name: compiled.field(name, source).compiled for name, source in fields.items()}
    for field in used.values():
        if field.aggregates:
            everyone |= set(field.columns)
    if doc["unit"] == "household":
        household = next((n for n, s in doc["data"].items() if s["dataset"] == "household"), None)
        if household is not None:
            everyone.add(f"{household}.relation")
            key = next((a for a in HEAD_ATTRIBUTES if a in declared[household]), None)
            if key is not None:
                everyone.add(f"{household}.{key}")
    later = {c for field in used.values() for c in field.columns} - everyone
    detail_fields = {name: fields[name] for name, field in used.items() if set(field.columns) & later}

    def pick(wanted: set[str]) -> Attributes:
        return {
            n: [a for a in attrs if f"{n}.{a}" in wanted]
            for n, attrs in declared.items()
            if any(f"{n}.{a}" in wanted for a in attrs)
        }

    return FetchPlan(pick(everyone), pick(later), detail_fields)


def purpose_of(service_id: str) -> str:
    return f"specified-public-benefit:{service_id}"


class ScanChoices:
    """Which sources are read whole (a scan of the municipality) when everyone is read: those the hub lets be
    scanned. The hub decides by its access rules (a rule's ``scan``); a source is asked for a scan and, refused
    (not-allowed), is listed from then on, by whoever shares this object (one publish: its other municipalities
    do not ask again). A rule's change reaches a publish that starts after it."""

    def __init__(self):
        self._listed: set[str] = set()
        self._lock = threading.Lock()

    def tries(self, name: str) -> bool:
        with self._lock:
            return name not in self._listed

    def refused(self, name: str) -> None:
        with self._lock:
            self._listed.add(name)


def _scan_refused(exc: HubError) -> bool:
    return exc.status == 403 and exc.problem.get("type") == PROBLEM_TYPES["not-allowed"].uri


def fetch_municipality(
    client: MeshClient,
    doc: dict,
    code: str,
    subjects: list[str] | None = None,
    attributes: Attributes | None = None,
    first_read: Callable[[], None] | None = None,
    lazy: bool = False,
    scans: ScanChoices | None = None,
) -> pl.DataFrame | pl.LazyFrame:
    """The definition's data (or only ``attributes`` of it) for every resident of one municipality, or only for
    ``subjects``: a scan (or subject list) of the first source, then one bulk exchange per other source; columns
    named 'source.attribute', plus 'subject' and 'household' (the household key, the same for every member: see
    household_key). The other sources are read at the same time (they are other exchanges, often with other
    agencies): for everyone, each is asked for a scan with the first, and one the hub does not let be scanned is
    listed once the first has answered (``scans``: what the hub refused so far). ``first_read()`` is called once
    the first source has answered (or failed to). ``lazy``: the frame as a LazyFrame, its joins done by whoever
    collects it (this thread is then free for the next municipality sooner)."""
    purpose = purpose_of(doc["id"])
    everyone = subjects is None
    scans = scans if scans is not None else ScanChoices()
    wanted = {
        name: list(source["attributes"]) if attributes is None else attributes.get(name)
        for name, source in doc["data"].items()
    }
    sources = [(name, source) for name, source in doc["data"].items() if wanted[name]]
    if not sources:
        empty = pl.DataFrame({"subject": []}, schema={"subject": pl.Utf8}).with_columns(household_key(pl.DataFrame()))
        return empty.lazy() if lazy else empty

    def read(name: str, source: dict, asked) -> pl.DataFrame:
        provider = source["provider"].replace("{code}", code).replace("*", code)
        # (the Arrow answer and the body it lies in are let go at once, not when the next answer has arrived)
        return _columns(
            pl.from_arrow(client.bulk(provider, source["dataset"], asked, wanted[name], purpose)), name, wanted[name]
        )

    first: Future[pl.DataFrame] = Future()

    def other(name: str, source: dict) -> pl.DataFrame | None:
        """A scan where the hub allows one, else the first source's subjects listed (None when there are none)."""
        if everyone and scans.tries(name):
            try:
                return read(name, source, None)
            except HubError as exc:
                if not _scan_refused(exc):
                    raise
                scans.refused(name)
        frame = first.result()
        return read(name, source, frame["subject"].to_arrow()) if len(frame) else None

    with ThreadPoolExecutor(max_workers=len(sources), thread_name_prefix="fetch-source") as pool:
        others = [pool.submit(other, name, source) for name, source in sources[1:]]
        try:
            frame = read(*sources[0], subjects)
        except BaseException as exc:
            first.set_exception(exc)
            raise
        finally:
            if first_read is not None:
                first_read()
        first.set_result(frame)
        # A part naming the same subjects in the same order (a scan of the same residents) is set beside the frame,
        # which needs no join; the others are joined to its rows by subject.
        joined = []
        for part in (future.result() for future in others):
            if part is None:
                continue
            if part.height == frame.height and part["subject"].equals(frame["subject"]):
                frame = frame.hstack(part.drop("subject").get_columns())
            else:
                joined.append(part)
    whole = frame.lazy()
    for part in joined:
        whole = whole.join(part.lazy(), on="subject", how="left")
    whole = whole.with_columns(household_key(whole))
    return whole if lazy else whole.collect()


def fetch_details(
    client: MeshClient, doc: dict, code: str, units: pl.DataFrame, fetch: FetchPlan, compiled
) -> pl.DataFrame:
    """The eligible units with what only their form needs: read for their subjects alone, then the form fields
    that use it."""
    if not fetch.details or units.height == 0:
        return units
    details = fetch_municipality(client, doc, code, units["subject"].to_arrow(), fetch.details).drop("household")
    # The records of these exchanges are the units' own, beside those that read everyone's data.
    details = details.rename(
        {c: c.replace("._audit", ".details._audit") for c in details.columns if c.endswith("._audit")}
    )
    joined = units.join(details, on="subject", how="left")
    fields = [compiled.expression(source).alias(name) for name, source in fetch.detail_fields.items()]
    return joined.with_columns(fields) if fields else joined


def _columns(table: pl.DataFrame, name: str, attributes: list[str]) -> pl.DataFrame:
    kept = ["subject", *attributes]
    out = table.select(kept).rename({a: f"{name}.{a}" for a in attributes})
    if "audit_record" in table.columns:
        out = out.with_columns(table.select(pl.col("audit_record").alias(f"{name}._audit")))
    for column, dtype in out.schema.items():
        if column.endswith("_date") and dtype == pl.Utf8:
            out = out.with_columns(pl.col(column).str.to_date(strict=False))
    return out


def household_key(frame: pl.DataFrame | pl.LazyFrame) -> pl.Expr:
    """The household's head (世帯主) as the registry names it, or from the member lists: the head's pseudonym, or
    the smallest member's when there is no head. Not simply the smallest member: a newborn joining the household
    must not give it a new key (and a second offer)."""
    columns = frame.collect_schema().names()
    if "household.head" in columns:
        return pl.coalesce(pl.col("household.head"), pl.col("subject")).alias("household")
    if "household.members" in columns:
        members = pl.col("household.members")
        heads = members.list.eval(
            pl.element().filter(pl.element().struct.field("relation").is_in(["head", "single"])).struct.field("subject")
        ).list.min()
        smallest = members.list.eval(pl.element().struct.field("subject")).list.min()
        return pl.coalesce(heads, smallest, pl.col("subject")).alias("household")
    return pl.col("subject").alias("household")
