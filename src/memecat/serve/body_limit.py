"""Request bodies capped while they stream in: never read unbounded into memory."""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from memecat.serve.settings import ServeSettings

FORM_OVERHEAD = 64 * 1024  # multipart boundaries and part headers around the fields


def single_body_limit(settings: ServeSettings) -> int:
    # base64 JSON is 4/3 of the bytes; 4: UTF-8 bytes per character at most
    return settings.max_upload_bytes * 4 // 3 + 4 * settings.max_text_chars + FORM_OVERHEAD


class BodyLimit:
    """Refuse request bodies over a per-path limit: by Content-Length up front, else as the chunks arrive."""

    def __init__(self, app: ASGIApp, limits: dict[str, int], default: int):
        self.app = app
        self.limits = limits
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], self.default)
        message = f"request body over the {limit:,}-byte limit"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict:
            nonlocal received
            chunk = await receive()
            received += len(chunk.get("body", b""))
            if received > limit:
                raise HTTPException(413, message)  # raised inside the endpoint's body parsing
            return chunk

        await self.app(scope, limited_receive, send)
