"""A naive prediction loop to compare `memecat predict` against: a label-attention model folder, one meme at a
time, PyTorch encoders, no batching, no thread pool, no feature cache. Same model, same outputs.

    python benchmarks/naive_predict.py --model runs/la-frozen [--split test]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from memecat.data.images import open_image
from memecat.models.base import load_model
from memecat.tasks import load_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a label-attention model folder")
    parser.add_argument("--split", default="test")
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model(args.model)
    # The encoders as PyTorch modules (the frozen layers below any the members fine-tuned), not the extractor's
    # cached, batched, ONNX path.
    images = model.features.image_encoder
    texts = model.features.frozen_text_encoder(model.config.finetune_layers)
    memes = load_split(model.task, args.split)
    loaded = time.perf_counter()
    with torch.inference_mode():
        for meme in memes:
            grid = images(images.preprocess([open_image(meme.image)])).grid
            ids = texts.tokenize([meme.text])
            text = texts(ids["input_ids"], ids["attention_mask"])
            batch = {"image_grid": grid, "text_tokens": text.tokens, "text_mask": text.mask}
            torch.stack([torch.sigmoid(net(batch)[0]) for net in model.members]).mean(0)
    done = time.perf_counter()
    n = len(memes)
    print(f"naive: {n} memes, {n / (done - loaded):.1f} memes/s warm, {n / (done - started):.1f} memes/s "
          f"including model load")


if __name__ == "__main__":
    main()
