"""OpenAPI descriptions of what FastAPI cannot infer: request bodies the endpoints parse themselves (to bound
them and keep uploads in memory) and every error answer."""

from __future__ import annotations

from memecat.serve.image_check import ACCEPTED
from memecat.serve.schemas import Problem
from memecat.serve.settings import ServeSettings
from memecat.serve.uploads import ID_CHARS

ERRORS = {
    400: "malformed multipart or JSON body",
    401: "missing or wrong API key (only when the server was started with --api-key-env)",
    413: "image, request or batch over its limit, or image over the pixel cap",
    415: f"not a {ACCEPTED} image, or a body that is neither multipart/form-data nor JSON",
    422: "neither image nor text, a misused field, text over the limit or a corrupt image",
    503: "the model's queue is full: retry after the Retry-After seconds",
    504: "the request's deadline passed before the model answered",
}


def problems(*codes: int) -> dict:
    out = {code: {"model": Problem, "description": ERRORS[code]} for code in codes}
    if 503 in out:
        out[503]["headers"] = {"Retry-After": {"description": "seconds to wait before retrying",
                                               "schema": {"type": "integer"}}}
    if 401 in out:
        out[401]["headers"] = {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}}
    return out


def _fields(settings: ServeSettings, binary: bool) -> dict:
    image = ({"type": "string", "format": "binary",
              "description": f"{ACCEPTED}, at most {settings.max_upload_bytes:,} bytes; leave out for a "
                             "text-only meme"}
             if binary else
             {"type": ["string", "null"], "contentEncoding": "base64",
              "description": f"the image file's bytes in base64 (a data: URL works too); {ACCEPTED}, at most "
                             f"{settings.max_upload_bytes:,} bytes decoded; leave out for a text-only meme"})
    return {
        "image" if binary else "image_base64": image,
        "text": {"type": "string" if binary else ["string", "null"], "maxLength": settings.max_text_chars,
                 "description": "the text on the meme; leave out or empty for an image-only meme"},
        "id": {"type": "string" if binary else ["string", "null"], "minLength": 1, "maxLength": ID_CHARS,
               "description": "an id to echo back (default: the image file's name without suffix, or 'upload'; "
                              "in a batch, the meme's number)"},
    }


EXPLAIN = {"type": "boolean", "description": "add the model's per-label explanation (also ?explain=true)"}


def _image_or_text(image_key: str, text_key: str) -> dict:
    """A meme needs an image or a text with a visible character."""
    return {"anyOf": [{"required": [image_key], "properties": {image_key: {"type": "string", "minLength": 1}}},
                      {"required": [text_key], "properties": {text_key: {"type": "string", "pattern": "\\S"}}}]}


def single_body(settings: ServeSettings) -> dict:
    either = ("Send the image, the text or both: text alone is a text-only meme, an image with no or empty "
              "text an image-only one.")
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "description": either,
                                           "properties": {**_fields(settings, binary=True), "explain": EXPLAIN},
                                           **_image_or_text("image", "text")}},
        "application/json": {"schema": {"type": "object", "description": either, "additionalProperties": False,
                                         "properties": {**_fields(settings, binary=False), "explain": EXPLAIN},
                                         **_image_or_text("image_base64", "text")}},
    }}}


def batch_body(settings: ServeSettings) -> dict:
    """Each meme's content (neither image nor text, text over the limit, a bad image) is judged on its own and
    answered in its result; only a malformed body fails the whole request."""
    n = settings.max_batch_items
    per_meme = (f"a meme with neither image nor text, a text over {settings.max_text_chars:,} characters or a "
                "bad image gets its own error in the results; the other memes are scored")
    fields = _fields(settings, binary=False)
    fields["text"] = {"type": ["string", "null"], "description": f"the text on the meme, at most {settings.max_text_chars:,} "
                                                       "characters; leave out or empty for an image-only meme"}
    item = {"type": "object", "additionalProperties": False, "properties": fields,
            "description": "one meme: its image, its text or both"}
    form_fields = {}
    for kind, spec in _fields(settings, binary=True).items():
        spec = {key: value for key, value in spec.items() if key != "maxLength" or kind != "text"}
        form_fields[f"{kind}_0"] = {**spec, "description": f"meme 0's {kind}; memes 1, 2, ... send {kind}_1, "
                                                           f"{kind}_2, ... ({spec['description']})"}
    return {"requestBody": {"required": True, "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["items"], "additionalProperties": False, "description": per_meme,
            "properties": {"items": {"type": "array", "minItems": 1, "maxItems": n, "items": item},
                           "explain": EXPLAIN}}},
        "multipart/form-data": {"schema": {
            "type": "object",
            "description": f"up to {n} memes numbered from 0: image_<i>, text_<i> and id_<i> for meme i; the "
                           f"whole body at most {settings.max_batch_body_bytes:,} bytes; {per_meme}",
            "properties": {**form_fields, "explain": EXPLAIN},
            "anyOf": [{"required": [f"{kind}_0"]} for kind in ("image", "text", "id")]}},
    }}}
