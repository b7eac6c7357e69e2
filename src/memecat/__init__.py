"""memecat: which categories does a meme belong to?"""

__version__ = "0.1.0"
