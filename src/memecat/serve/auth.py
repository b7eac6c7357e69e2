"""Optional bearer-token auth for the scoring endpoints (off unless an API key is configured)."""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from memecat.errors import MemecatError

_bearer = HTTPBearer(auto_error=False, description="the key named by `memecat serve --api-key-env`")


def api_key_from_env(name: str) -> str:
    """The key held by environment variable `name`; a missing or empty one refuses to start."""
    key = os.environ.get(name, "")
    if not key.strip():
        raise MemecatError(f"--api-key-env {name}: environment variable {name} is not set or empty")
    return key


def bearer_dependency(api_key: str):
    """A FastAPI dependency that answers 401 unless the request carries `Authorization: Bearer <api_key>`."""
    expected = api_key.encode()

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        given = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(given, expected):  # constant time: no guessing by timing
            raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return Depends(check)
