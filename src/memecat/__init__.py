"""memecat: which categories does a meme belong to?"""

__version__ = "0.1.0"

__all__ = ["Meme", "__version__", "load_model"]


def __getattr__(name: str):
    # Lazy, so `memecat --help` does not pay for importing torch.
    if name == "load_model":
        from memecat.models.base import load_model

        return load_model
    if name == "Meme":
        from memecat.data.meme import Meme

        return Meme
    raise AttributeError(f"module 'memecat' has no attribute {name!r}")
