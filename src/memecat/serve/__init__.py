"""HTTP API and demo page for a trained model."""

from memecat.serve.app import create_app, run_server

__all__ = ["create_app", "run_server"]
