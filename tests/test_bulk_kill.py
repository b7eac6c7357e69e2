"""A real `memecat predict` process stopped mid-job (SIGTERM, then kill -9) and resumed: every id exactly once.

The input is a FIFO the test feeds: the job predicts what it has been given, then waits for more, and is stopped
there, with finished batches in its journal and a batch half read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import memecat
from memecat.cli import cli
from memecat.predict.journal import Journal

BATCH = 8
MEMES = [{"id": f"m{i}", "text": f"meme number {i}"} for i in range(40)]
LINES = [json.dumps(row) + "\n" for row in MEMES]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    memes = [memecat.Meme(str(i), "t", labels=("Smears",) if i % 2 else ("Doubt",)) for i in range(6)]
    model = memecat.create_model("majority", task="semeval-t6").fit(memes)
    return model.save_pretrained(tmp_path_factory.mktemp("model") / "majority")


def start(model_dir: Path, source: Path, out: Path) -> subprocess.Popen:
    memecat_bin = Path(sys.executable).with_name("memecat")
    return subprocess.Popen([str(memecat_bin), "predict", "--model", str(model_dir), "--input", str(source),
                             "--out", str(out), "--batch-size", str(BATCH), "--resume"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def feed_until(fifo: Path, lines: list[str], journal: Journal, batches: int, process: subprocess.Popen):
    """Write `lines` into the FIFO, keep it open, and return the open writer once the journal holds `batches`
    finished batches."""
    writer = fifo.open("w")
    writer.writelines(lines)
    writer.flush()
    deadline = time.monotonic() + 60
    while len(journal.shards()) < batches:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the job never finished its batches"
        time.sleep(0.05)
    return writer


def test_killed_twice_then_resumed_every_id_once(tmp_path, model_dir):
    fifo = tmp_path / "memes.jsonl"
    out = tmp_path / "pred.jsonl"
    journal = Journal(out, "jsonl")

    # 1. SIGTERM after two batches, with a third half read: a clean stop and a hint to resume.
    os.mkfifo(fifo)
    job = start(model_dir, fifo, out)
    writer = feed_until(fifo, LINES[:20], journal, 2, job)
    job.send_signal(signal.SIGTERM)
    _, err = job.communicate(timeout=30)
    writer.close()
    assert job.returncode == 130, err
    assert "interrupted; the finished batches are in" in err and "--resume to finish" in err
    assert not out.exists() and len(journal.shards()) == 2

    # 2. kill -9 after one more batch: no handler runs, the journal is all that is left.
    job = start(model_dir, fifo, out)
    writer = feed_until(fifo, LINES[:30], journal, 3, job)
    job.kill()
    job.wait(timeout=30)
    writer.close()
    assert job.returncode == -signal.SIGKILL and not out.exists()
    done = sorted(journal.done_keys(), key=lambda key: int(key[1:]))
    assert done == [row["id"] for row in MEMES[:24]]  # three batches, each meme once, none of the fourth

    # 3. Resume on the whole file: only the rest is predicted, and every id appears exactly once.
    fifo.unlink()
    fifo.write_text("".join(LINES))
    result = CliRunner().invoke(cli, ["predict", "--model", str(model_dir), "--input", str(fifo), "--out", str(out),
                                      "--batch-size", str(BATCH), "--resume"])
    assert result.exit_code == 0, result.output
    assert "40 records, 40 labelled, 0 errors; this run 16 in" in result.output and "24 kept from before" in result.output
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [row["id"] for row in MEMES]
    assert not journal.folder.exists()
