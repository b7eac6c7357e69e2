"""HTTP API and demo page for a trained model."""

from memecat.serve.app import create_app, run_server
from memecat.serve.model_info import model_id
from memecat.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "model_id", "run_server"]
