"""The service's limits and switches, with the defaults `memecat serve` uses."""

from __future__ import annotations

from dataclasses import dataclass

from memecat.errors import MemecatError

MiB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """What one server accepts and how it schedules the model. Every limit answers at once when crossed."""

    max_upload_bytes: int = 10 * MiB  # one image
    max_text_chars: int = 5000  # one meme's text
    max_batch_items: int = 32  # memes in one POST /v1/predict/batch
    max_batch_body_bytes: int = 32 * MiB  # the whole batch request
    max_batch_size: int = 16  # memes the model scores in one call (server-side micro-batching)
    max_wait_ms: float = 5.0  # longest a meme waits for others to join its batch
    max_queue: int = 64  # memes waiting for the model; beyond this a request gets 503 with Retry-After
    max_call_pixels: int = 48_000_000  # decoded pixels per model call: huge images are decoded a few at a time
    timeout_s: float = 10.0  # per request, from arrival to answer; beyond it 504
    feature_cache_bytes: int = 64 * MiB  # in-memory LRU of encoder features of recent uploads
    api_key: str | None = None  # bearer token the scoring endpoints require (None: no auth)
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the API (none: CORS off)
    warm_up: bool = True  # score a stand-in meme at start-up before /readyz says ready

    def __post_init__(self) -> None:
        positive = {"max_upload_bytes": self.max_upload_bytes, "max_text_chars": self.max_text_chars,
                    "max_batch_items": self.max_batch_items, "max_batch_body_bytes": self.max_batch_body_bytes,
                    "max_batch_size": self.max_batch_size, "max_queue": self.max_queue,
                    "max_call_pixels": self.max_call_pixels,
                    "timeout_s": self.timeout_s}
        for name, value in positive.items():
            if value <= 0:
                raise MemecatError(f"{name} must be positive, got {value}")
        if self.max_wait_ms < 0 or self.feature_cache_bytes < 0:
            raise MemecatError("max_wait_ms and feature_cache_bytes cannot be negative")
        if self.max_batch_items > self.max_queue:
            raise MemecatError(f"max_batch_items ({self.max_batch_items}) cannot exceed max_queue "
                               f"({self.max_queue}): such a batch could never be admitted")
        if self.api_key is not None and not self.api_key.strip():
            raise MemecatError("the API key is empty")
