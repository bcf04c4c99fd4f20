"""額改定 (amount revision): a birth into a household that was already offered a service everyone is offered (the
child allowance: 児童手当法第9条) raises what the household is owed, and the parent is told so.

- Offered but not applied for yet (or only by an application since withdrawn): the offer itself is revised (the new amount and the new pre-filled form), so
  the one tap that follows claims the revised amount. An application already signed over the old offer no longer
  matches it and is refused, as any signature over other content is.
- Applied for (received, in review, approved or paid): the household gets a revision offer (額改定請求) for the
  difference, with the amounts before and after in its signed form. One such offer is open per household at a
  time: a second birth before it is claimed revises it again, so twins are one claim, not two.
- Rejected: nothing is awarded, so nothing is revised.

Either way the parent gets one notice per birth (keyed by the child), and a prior intent claims it without asking.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Connection, Engine, func, insert, select, update

from publicmesh.applications.lifecycle import AWARDED, Action, Status, allows
from publicmesh.protocol.client import MeshClient
from publicmesh.protocol.members import PORTAL
from publicmesh.services.fetch import purpose_of
from publicmesh.services.publish import decide_by_intent
from publicmesh.services.store import amount_revisions, applications, offers, utc_now

REVISION_TITLE = {"ja": "{title}（額改定）", "en": "{title} (amount revision)"}
# For a definition without notices.revised: plain words.
FALLBACK = {
    "title": {"ja": "{title}の額が変わります", "en": "Your {title} changes"},
    "body": {
        "ja": "お子さんの誕生で、{previous}円が{revised}円になります。このお知らせを開いて申請してください。",
        "en": "With the birth of your child, {previous} yen becomes {revised} yen. Open this notice to apply.",
    },
}


def revise(engine: Engine, client: MeshClient, doc: dict, unit: dict, form: dict, child: str) -> str | None:
    """The household's award revised for the birth of ``child``, given its unit row from decide() (``amount``,
    ``household``, ``subject``) and its new pre-filled form; None when the household was never offered the
    service (it is then offered it as anyone newly eligible is)."""
    household, revised = unit["household"], int(unit["amount"])
    with engine.begin() as conn:
        offer = _one(conn, select(offers).where(offers.c.service_id == doc["id"], offers.c.unit_key == household))
        if offer is None:
            return None
        applied = _one(
            conn,
            select(applications)
            .where(  # the live application, if any
                applications.c.service_id == doc["id"], applications.c.unit_key == household
            )
            .order_by((applications.c.status == Status.WITHDRAWN).asc())
            .limit(1),
        )
        if applied is None or applied["status"] == Status.WITHDRAWN:  # the offer is open: applying claims it as revised
            if revised <= offer["amount_yen"]:
                return f"{doc['id']}: amount unchanged"
            previous = offer["amount_yen"]
            conn.execute(update(offers).where(offers.c.id == offer["id"]).values(amount_yen=revised, form=form))
            claim = {**offer, "amount_yen": revised, "form": form}
        elif not allows(applied["status"], Action.REVISE):  # rejected: nothing was awarded
            return f"{doc['id']}: {applied['status']}, nothing to revise"
        else:
            previous = _awarded(conn, doc["id"], household)
            if revised <= previous:
                return f"{doc['id']}: amount unchanged"
            claim = _revision_offer(conn, doc, offer, household, child, previous, revised, form)
    intent = _notify(client, doc, claim, child, previous, revised)
    if intent:  # said in advance: pay me what I am owed
        decide_by_intent(engine, client, doc, [claim])
    return f"{doc['id']}: revised from {previous} to {revised} yen"


def _one(conn: Connection, query) -> dict | None:
    row = conn.execute(query).mappings().first()
    return dict(row) if row is not None else None


def _awarded(conn: Connection, service_id: str, household: str) -> int:
    """What the household is awarded: its application and its claimed revisions, unless rejected or withdrawn (the
    statuses the lifecycle revises are the awarded ones)."""
    revisions = select(amount_revisions.c.offer_id).where(
        amount_revisions.c.service_id == service_id, amount_revisions.c.household == household
    )
    return int(
        conn.execute(
            select(func.coalesce(func.sum(applications.c.amount_yen), 0)).where(
                applications.c.service_id == service_id,
                applications.c.status.in_(AWARDED),
                (applications.c.unit_key == household) | applications.c.offer_id.in_(revisions),
            )
        ).scalar_one()
    )


def _revision_offer(
    conn: Connection, doc: dict, offer: dict, household: str, child: str, previous: int, revised: int, form: dict
) -> dict:
    """The household's open revision offer, revised again, or a new one for this birth."""
    form = {
        **form,
        "title_ja": REVISION_TITLE["ja"].format(title=form["title_ja"]),
        "title_en": REVISION_TITLE["en"].format(title=form["title_en"]),
        "revision": {"previous_yen": previous, "revised_yen": revised},
    }
    claimed = select(applications.c.offer_id)
    open_one = _one(
        conn,
        select(offers)
        .join(amount_revisions, amount_revisions.c.offer_id == offers.c.id)
        .where(
            amount_revisions.c.service_id == doc["id"],
            amount_revisions.c.household == household,
            offers.c.id.not_in(claimed),
        ),
    )
    values = {"amount_yen": revised - previous, "form": form, "offered_at": utc_now()}
    if open_one is not None:
        conn.execute(update(offers).where(offers.c.id == open_one["id"]).values(**values))
        conn.execute(
            update(amount_revisions)
            .where(amount_revisions.c.offer_id == open_one["id"])
            .values(previous_yen=previous, revised_yen=revised)
        )
        return {**open_one, **values}
    new = {
        "id": secrets.token_hex(8),
        "service_id": doc["id"],
        "unit_key": child,
        "subject": offer["subject"],
        "tenant": offer["tenant"],
        "version": int(doc["version"]),
        **values,
    }
    conn.execute(insert(offers).values(**new))
    conn.execute(
        insert(amount_revisions).values(
            offer_id=new["id"],
            service_id=doc["id"],
            household=household,
            child=child,
            previous_yen=previous,
            revised_yen=revised,
            created_at=values["offered_at"],
        )
    )
    return new


def _notify(client: MeshClient, doc: dict, claim: dict, child: str, previous: int, revised: int) -> bool:
    """The parent's notice of this birth's revision, opening the offer to claim it; whether they have a prior
    intent."""
    text = (doc.get("notices") or {}).get("revised") or FALLBACK
    notice = {
        "subject": claim["subject"],
        "key": f"{doc['id']}:{child}:revised",
        "link": f"/applications/offers/{claim['id']}",
    }
    for lang in ("ja", "en"):
        values = {
            "title": doc["title"][lang],
            "previous": f"{previous:,}",
            "revised": f"{revised:,}",
            "amount": f"{claim['amount_yen']:,}",
        }
        notice[f"title_{lang}"] = text["title"][lang].format(**values)
        notice[f"body_{lang}"] = text["body"][lang].format(**values)
    answer = client.notify(str(PORTAL), purpose_of(doc["id"]), doc["id"], [notice])
    return bool(answer["prior_intent"][0])
