"""Reading memes: one record type, readers for each layout, robust image loading."""

from memecat.data.meme import Meme
from memecat.data.readers import read_dataset

__all__ = ["Meme", "read_dataset"]
