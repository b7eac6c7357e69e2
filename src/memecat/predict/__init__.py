"""Predicting memes in bulk, streamed and resumable, on this machine or on Ray.

- `inputs`: what to predict, as a stream of entries (a meme, or the problem that keeps a record from being one)
- `batch`: one batch of entries to one output record each; nothing one meme holds stops the batch
- `journal`: finished batches kept beside the output until it is written, so a stopped job resumes
- `outputs`: prediction files (JSON list, JSON Lines, CSV, Parquet), written whole and read back
- `job`: `predict_dataset`, the job itself; `ray_engine`: its batches on Ray Data; `command`: `memecat predict`
- `model_id`: the short hash that says which model wrote an output
"""
