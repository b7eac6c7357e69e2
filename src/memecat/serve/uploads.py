"""Reading memes out of requests, in memory and within limits, before any model work.

A request is a multipart form (the browser's and curl's way), a URL-encoded form (text only) or JSON with
base64 images. Multipart files stay in memory (Starlette's parser, with its spill-to-disk threshold raised to
the body cap), so an upload never touches the disk. A malformed field is the client's bug and fails the
request; a meme whose content is refused (no image nor text, text too long, a bad image) gets an ItemError,
which in a batch concerns that meme alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import PurePath
from typing import Any

from fastapi import HTTPException, Request
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from memecat.serve.body_limit import single_body_limit
from memecat.serve.image_check import check_image
from memecat.serve.scoring import ItemError, ScoreRequest
from memecat.serve.settings import ServeSettings

ID_CHARS = 200
BATCH_FIELD = re.compile(r"(image|text|id)_(\d{1,6})")


def check_text(text: str, name: str, settings: ServeSettings) -> tuple[str, ItemError | None]:
    """The text as the model reads it (LF line ends; blank means none) and why it is refused, if it is."""
    text = text.replace("\r\n", "\n")  # browsers send form text with CRLF; the datasets use LF
    if not text.strip():
        text = ""  # an image-only meme
    if len(text) > settings.max_text_chars:
        return text, ItemError(422, f"{name}: text is {len(text):,} characters, over the "
                                    f"{settings.max_text_chars:,} limit")
    return text, None


def parse_flag(value: Any, field: str, json_only: bool = False) -> bool:
    """A JSON boolean, or a form field's "true"/"false"."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and not json_only and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise HTTPException(422, f"'{field}' must be true or false")


def _check_fields(index: int | None, meme_id: Any, text: Any) -> None:
    where = f"meme {index}: " if index is not None else ""
    if meme_id is not None and (not isinstance(meme_id, str) or not 0 < len(meme_id) <= ID_CHARS):
        raise HTTPException(422, f"{where}'id' must be a string of 1 to {ID_CHARS} characters")
    if text is not None and not isinstance(text, str):
        raise HTTPException(422, f"{where}'text' must be a string")


def build_item(*, index: int | None, meme_id: Any, text: Any, image: bytes | None, filename: str | None,
               explain: bool, settings: ServeSettings) -> ScoreRequest | ItemError:
    """One meme checked: a ScoreRequest for the model, or the ItemError it gets instead (its content is at
    fault: in a batch, the other memes go on). A malformed field is the client's bug: an HTTPException."""
    _check_fields(index, meme_id, text)
    stem = PurePath(filename).stem if filename else ""
    meme_id = meme_id or stem or (str(index) if index is not None else "upload")
    name = filename or (meme_id if index is not None else "upload")
    text, problem = check_text(text or "", name, settings)
    pixels = 0
    if problem is None and image is not None:
        checked = check_image(image, name, settings)
        problem, pixels = (checked, 0) if isinstance(checked, ItemError) else (None, checked)
    if problem is None and image is None and not text:
        where = f"meme {index}: " if index is not None else ""
        problem = ItemError(422, f"{where}send the meme's image, its text or both; got neither")
    if problem is not None:
        problem.id = meme_id
        return problem
    return ScoreRequest(id=meme_id, text=text, image=image, name=name, explain=explain, pixels=pixels)


# --- the request body ------------------------------------------------------------------------------
def _media_type(request: Request) -> str:
    media, _ = parse_options_header(request.headers.get("content-type", ""))
    return media.decode("latin-1").lower()


async def _parse_form(request: Request, limit: int, max_files: int, max_fields: int) -> FormData:
    if _media_type(request) != "multipart/form-data":
        return await request.form(max_files=max_files, max_fields=max_fields, max_part_size=limit)
    parser = MultiPartParser(request.headers, request.stream(), max_files=max_files, max_fields=max_fields,
                             max_part_size=limit)
    parser.spool_max_size = limit + 1  # SpooledTemporaryFile stays in memory below this size
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(400, f"malformed multipart body: {exc.message}") from None


@asynccontextmanager
async def _form(request: Request, limit: int, max_files: int, max_fields: int) -> AsyncIterator[FormData]:
    """The multipart or URL-encoded form, files held in memory; closed on leaving."""
    form = await _parse_form(request, limit, max_files, max_fields)
    try:
        yield form
    finally:
        await form.close()


async def _json(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"malformed JSON body ({str(exc).splitlines()[0]})") from None


def _decode_base64(value: Any, name: str) -> bytes | ItemError:
    if not isinstance(value, str):
        raise HTTPException(422, f"{name}: 'image_base64' must be a base64 string")
    if value.startswith("data:") and "," in value:  # a data URL, as browsers make them
        value = value.split(",", 1)[1]
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return ItemError(422, f"{name}: 'image_base64' is not valid base64")


ITEM_KEYS = {"id", "text", "image_base64"}


def _json_item(raw: Any, index: int | None, explain: bool, settings: ServeSettings) -> ScoreRequest | ItemError:
    where = f"meme {index}" if index is not None else "body"
    if not isinstance(raw, dict):
        raise HTTPException(422, f"{where}: must be an object with 'text' and/or 'image_base64'")
    unknown = sorted(set(raw) - ITEM_KEYS - ({"explain"} if index is None else set()))
    if unknown:
        raise HTTPException(422, f"{where}: unknown field {unknown[0]!r}; fields are "
                                 f"{', '.join(sorted(ITEM_KEYS))}")
    _check_fields(index, raw.get("id"), raw.get("text"))
    image = None
    if raw.get("image_base64") not in (None, ""):  # empty, like an unchosen file input: no image
        image = _decode_base64(raw["image_base64"], raw.get("id") if isinstance(raw.get("id"), str) else where)
        if isinstance(image, ItemError):
            return image
    return build_item(index=index, meme_id=raw.get("id"), text=raw.get("text"), image=image, filename=None,
                      explain=explain, settings=settings)


def _unsupported(request: Request) -> HTTPException:
    media = _media_type(request) or "no content type"
    return HTTPException(415, f"{media} body; send multipart/form-data or application/json")


def check_query(request: Request) -> None:
    """Refuse query parameters the endpoint does not know: a misspelt ?explian=true is a mistake to report."""
    unknown = sorted(set(request.query_params) - {"explain"})
    if unknown:
        raise HTTPException(422, f"unknown query parameter {unknown[0]!r}; the only one is 'explain'")


async def read_one(request: Request, settings: ServeSettings, explain: bool) -> ScoreRequest:
    """The meme of POST /v1/predict, or the HTTPException its problem maps to."""
    check_query(request)
    media = _media_type(request)
    if media == "application/json":
        raw = await _json(request)
        if isinstance(raw, dict) and "explain" in raw:
            explain = parse_flag(raw["explain"], "explain", json_only=True) or explain
        item = _json_item(raw, None, explain, settings)
    elif media in ("multipart/form-data", "application/x-www-form-urlencoded", ""):
        item = await _form_item(request, settings, explain)
    else:
        raise _unsupported(request)
    if isinstance(item, ItemError):
        raise HTTPException(item.status, item.detail)
    return item


async def _form_item(request: Request, settings: ServeSettings, explain: bool) -> ScoreRequest | ItemError:
    async with _form(request, single_body_limit(settings), max_files=1, max_fields=4) as form:
        image, text, meme_id = form.get("image"), form.get("text"), form.get("id")
        if "explain" in form:
            explain = parse_flag(form.get("explain"), "explain") or explain
        if image == "":  # an empty plain field (curl -F image=) is no image
            image = None
        if image is not None and not isinstance(image, UploadFile):
            raise HTTPException(422, "'image' must be a file upload")
        if text is not None and not isinstance(text, str):
            raise HTTPException(422, "'text' must be a plain form field, not a file")
        if meme_id is not None and not isinstance(meme_id, str):
            raise HTTPException(422, "'id' must be a plain form field, not a file")
        data, filename = None, None
        if image is not None:
            data = await image.read(settings.max_upload_bytes + 1)
            filename = image.filename or None
            if not data and not filename:  # a form's file input left empty: no image chosen
                data = None
    return build_item(index=None, meme_id=meme_id, text=text, image=data, filename=filename,
                      explain=explain, settings=settings)


async def read_batch(request: Request, settings: ServeSettings, explain: bool) -> list[ScoreRequest | ItemError]:
    """The memes of POST /v1/predict/batch, each checked on its own; request-level problems as HTTPException."""
    check_query(request)
    media = _media_type(request)
    if media == "application/json":
        raw = await _json(request)
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list):
            raise HTTPException(422, "the body must be an object with an 'items' list")
        unknown = sorted(set(raw) - {"items", "explain"})
        if unknown:
            raise HTTPException(422, f"unknown field {unknown[0]!r}; the body has 'items' and 'explain'")
        if "explain" in raw:
            explain = parse_flag(raw["explain"], "explain", json_only=True) or explain
        _check_count(len(raw["items"]), settings)
        return [_json_item(item, i, explain, settings) for i, item in enumerate(raw["items"])]
    if media not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise _unsupported(request)
    n = settings.max_batch_items
    async with _form(request, settings.max_batch_body_bytes, max_files=n, max_fields=2 * n + 1) as form:
        fields: dict[int, dict[str, Any]] = {}
        for key, value in form.multi_items():
            if key == "explain":
                explain = parse_flag(value, "explain") or explain
                continue
            match = BATCH_FIELD.fullmatch(key)
            if not match:
                raise HTTPException(422, f"unknown field {key!r}; a batch sends image_<i>, text_<i> and id_<i> "
                                         "for memes i = 0, 1, ... and optionally explain")
            kind, index = match.group(1), int(match.group(2))
            if kind in fields.get(index, {}):
                raise HTTPException(422, f"field {key!r} sent twice")
            fields.setdefault(index, {})[kind] = value
        _check_count(len(fields), settings)
        if sorted(fields) != list(range(len(fields))):
            raise HTTPException(422, f"meme numbers must run 0 to {len(fields) - 1} without gaps")
        return [await _form_batch_item(i, fields[i], explain, settings) for i in range(len(fields))]


async def _form_batch_item(index: int, fields: dict[str, Any], explain: bool,
                           settings: ServeSettings) -> ScoreRequest | ItemError:
    image, text, meme_id = fields.get("image"), fields.get("text"), fields.get("id")
    if image == "":
        image = None
    for key, value, want_file in (("image", image, True), ("text", text, False), ("id", meme_id, False)):
        if value is not None and isinstance(value, UploadFile) != want_file:
            kind = "a file upload" if want_file else "a plain form field, not a file"
            raise HTTPException(422, f"meme {index}: '{key}_{index}' must be {kind}")
    data, filename = None, None
    if image is not None:
        data = await image.read(settings.max_upload_bytes + 1)
        filename = image.filename or None
        if not data and not filename:
            data = None
    return build_item(index=index, meme_id=meme_id, text=text, image=data, filename=filename,
                      explain=explain, settings=settings)


def _check_count(count: int, settings: ServeSettings) -> None:
    if count == 0:
        raise HTTPException(422, "the batch holds no memes")
    if count > settings.max_batch_items:
        raise HTTPException(422, f"{count} memes, over the {settings.max_batch_items}-meme batch limit")
