"""memecat: which categories does a meme belong to?

    import memecat
    model = memecat.load_model("runs/main/model")
    model.predict([memecat.Meme("1", "THEY LIE", image="meme.png")])
"""

__version__ = "0.2.0"

# Imported on first use, so `memecat --help` does not pay for importing torch.
_EXPORTS = {
    "Meme": "memecat.data.meme",
    "create_model": "memecat.models.registry",
    "load_model": "memecat.models.base",
    "NotFittedError": "memecat.errors",
    "MemecatError": "memecat.errors",
    "DataError": "memecat.errors",
    "FeatureExtractor": "memecat.features",
    "FeatureCache": "memecat.encoders.cache",
    "cross_validate": "memecat.evaluation",
    "predict_dataset": "memecat.predict.job",
}

__all__ = ["DataError", "FeatureCache", "FeatureExtractor", "Meme", "MemecatError", "NotFittedError", "__version__",
           "create_model", "cross_validate", "load_model", "predict_dataset"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memecat' has no attribute {name!r}")
