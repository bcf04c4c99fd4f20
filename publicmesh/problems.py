"""RFC 9457 problem details with stable type URIs and Japanese and English titles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

TYPE_PREFIX = "urn:publicmesh:problem:"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title_ja: str
    title_en: str

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.slug


_TYPES = [
    ProblemType("malformed-request", 400, "リクエストの形式が正しくありません", "The request is malformed"),
    ProblemType("missing-signature", 401, "署名がありません", "The request is not signed"),
    ProblemType("malformed-signature", 401, "署名の形式が正しくありません", "The signature is malformed"),
    ProblemType("bad-signature", 401, "署名を検証できません", "The signature does not verify"),
    ProblemType("unknown-key", 401, "登録されていない鍵です", "The signing key is not a certified member key"),
    ProblemType("stale-signature", 401, "署名の有効期間を過ぎています", "The signature is too old or from the future"),
    ProblemType("replayed", 401, "同じリクエストが再送されました", "The request was replayed"),
    ProblemType("digest-mismatch", 401, "本文のダイジェストが一致しません", "The body does not match its digest"),
    ProblemType(
        "not-allowed", 403, "この照会を認めるアクセスルールがありません", "No access rule allows this exchange"
    ),
    ProblemType(
        "invalid-request", 422, "リクエストの内容が正しくありません", "The request's fields are missing or not valid"
    ),
    ProblemType("submission-refused", 422, "申請を受け付けられません", "The submission was refused"),
    ProblemType(
        "wrong-state", 409, "申請の現在の状況ではこの操作はできません", "The application's status does not allow this"
    ),
    ProblemType(
        "cross-origin", 403, "他のサイトからの送信は受け付けません", "A form posted from another site is refused"
    ),
    ProblemType("no-consent", 403, "本人の有効な同意がありません", "The person has not consented to this exchange"),
    ProblemType(
        "not-a-consumer", 403, "この機関からの直接の照会は受け付けません", "This member may not call this node directly"
    ),
    ProblemType("unknown-subject", 404, "対象者が見つかりません", "The subject is not known"),
    ProblemType("unknown-member", 404, "メンバーが登録されていません", "The member is not registered"),
    ProblemType("unknown-dataset", 404, "データセットがありません", "The dataset does not exist"),
    ProblemType("unknown-log", 404, "この証人が見守っていないログです", "This witness does not follow that log"),
    ProblemType(
        "bad-checkpoint", 403, "チェックポイントの署名を検証できません", "The checkpoint's signature does not verify"
    ),
    ProblemType(
        "witness-conflict",
        409,
        "証人が前に署名したチェックポイントと整合しません",
        "The checkpoint is not consistent with the last one this witness cosigned",
    ),
    ProblemType("not-found", 404, "見つかりません", "Not found"),
    ProblemType("payload-too-large", 413, "リクエストが大きすぎます", "The request is too large"),
    ProblemType("unsupported-media-type", 415, "このメディアタイプは扱えません", "The media type is not supported"),
    ProblemType(
        "bad-provider-answer", 502, "提供機関の応答を検証できません", "The provider's answer could not be verified"
    ),
    ProblemType("provider-unavailable", 503, "提供機関に接続できません", "The provider is unavailable"),
    ProblemType("not-ready", 503, "サービスを提供する準備ができていません", "The part is not ready to serve"),
    ProblemType("provider-timeout", 504, "提供機関が時間内に応答しませんでした", "The provider did not answer in time"),
    ProblemType("internal-error", 500, "内部エラーが発生しました", "An internal error occurred"),
]
PROBLEM_TYPES = {t.slug: t for t in _TYPES}


class Problem(Exception):
    """An error to be answered as problem details."""

    def __init__(self, slug: str, detail: str, **extensions):
        super().__init__(detail)
        self.type = PROBLEM_TYPES[slug]
        self.detail = detail
        self.extensions = extensions

    @property
    def status(self) -> int:
        return self.type.status

    def body(self, instance: str | None = None, lang: str = "ja") -> bytes:
        doc = {
            "type": self.type.uri,
            "title": self.type.title_ja if lang == "ja" else self.type.title_en,
            "title_ja": self.type.title_ja,
            "title_en": self.type.title_en,
            "status": self.type.status,
            "detail": self.detail,
        }
        if instance:
            doc["instance"] = instance
        doc.update(self.extensions)
        return orjson.dumps(doc)

    def response(self, instance: str | None = None, lang: str = "ja", headers: dict | None = None) -> Response:
        return Response(
            self.body(instance, lang), status_code=self.status, headers=headers, media_type="application/problem+json"
        )


def preferred_language(accept_language: str | None) -> str:
    """'en' when the caller prefers English, else Japanese (the default)."""
    if accept_language and accept_language.strip().lower().startswith("en"):
        return "en"
    return "ja"


def invalid_request(errors: list[dict]) -> Problem:
    """A framework's request validation errors (FastAPI's RequestValidationError.errors()) as an invalid-request
    problem naming the first few fields."""
    listed = [{"loc": ".".join(str(p) for p in e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in errors]
    return Problem(
        "invalid-request", "; ".join(f"{e['loc']}: {e['msg']}" for e in listed[:5]) or "invalid", errors=listed
    )


class AnswerErrors:
    """ASGI middleware: an unhandled error is answered by ``handler`` (which logs it), and goes no further.

    Starlette's own last-resort handler answers and then re-raises, and uvicorn closes a kept-alive connection
    on any error that reaches it; here the answer is complete, so the connection stays open.
    """

    def __init__(self, app: ASGIApp, handler: Callable[[Request, Exception], Awaitable[Response]]):
        self.app, self.handler = app, handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # half an answer is out: only the server closing the connection can tell the client
                raise
            response = await self.handler(Request(scope, receive), exc)
            await response(scope, receive, send)


PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details, titled in Japanese and English",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "title_ja": {"type": "string"},
        "title_en": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}


def problem_openapi(openapi: Callable[[], dict], security_schemes: dict | None = None) -> Callable[[], dict]:
    """An app's ``openapi`` whose 422 answers are documented as what invalid_request answers (a problem),
    not as FastAPI's default validation error; with ``security_schemes`` in its components, if given."""

    def document() -> dict:
        schema = openapi()
        if security_schemes:
            schema.setdefault("components", {})["securitySchemes"] = security_schemes
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                answer = operation.get("responses", {}).get("422") if isinstance(operation, dict) else None
                if answer is not None:
                    answer["content"] = {"application/problem+json": {"schema": PROBLEM_SCHEMA}}
        return schema

    return document
