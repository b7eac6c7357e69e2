"""Predicting memes in bulk: inputs read, records written, failures isolated per meme."""
