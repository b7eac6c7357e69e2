"""HTTP API and demo page for a trained model. Imported lazily: the CLI loads FastAPI only to serve."""

__all__ = ["ServeSettings", "create_app", "model_id", "run_server"]

_EXPORTS = {"create_app": "memecat.serve.app", "run_server": "memecat.serve.app", "model_id": "memecat.serve.model_info",
            "ServeSettings": "memecat.serve.settings"}


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memecat.serve' has no attribute {name!r}")
