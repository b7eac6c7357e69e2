"""Evaluation report: scores, a per-label table and charts, as Markdown or HTML with PNGs beside it.

Charts are drawn on bare matplotlib Figures (Agg canvas, no pyplot): no global state, safe in threads.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from memecat.metrics import per_label_table, semeval_scores, task_scores
from memecat.tasks import Task

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
ACCENT = "#2f6fdf"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> str:
    fig.savefig(path, facecolor="white", bbox_inches="tight", pad_inches=0.15)  # nothing clipped at the edges
    return path.name


def _f1_chart(rows: list[dict], path: Path) -> str:
    labels = [r["label"] for r in rows]
    f1 = [r["f1"] for r in rows]
    fig = _figure(8.5, 0.32 * len(rows) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    ax.barh(y, f1, color=ACCENT, height=0.7)
    for yi, value, row in zip(y, f1, rows):
        ax.text(value + 0.01, yi, f"{value:.2f}  (n={row['support']})", va="center", fontsize=8, color="#333")
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()  # task order top to bottom, like the table
    ax.set_xlim(0, 1.18)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("F1")
    ax.set_title("F1 per label (n = gold support)")
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    return _save(fig, path)


def _matrix_chart(counts: np.ndarray, support: np.ndarray, labels: tuple[str, ...], title: str, xlabel: str,
                  ylabel: str, path: Path) -> str:
    """Counts in cells; colour is the share of the row's gold memes (the diagonal is recall), so rare gold
    labels show as clearly as common ones."""
    n = len(labels)
    share = counts / np.maximum(support, 1)[:, None]
    side = max(4.5, 0.36 * n + 3.2)
    fig = _figure(side + 1.5, side)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fontsize = 7 if n > 10 else 10
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=fontsize,
                        color="white" if share[i, j] > 0.55 else "#222")
    ax.set_xticks(range(n), labels, rotation=55 if n > 4 else 0, ha="right" if n > 4 else "center",
                  rotation_mode="anchor", fontsize=8 if n > 10 else 10)
    ax.set_yticks(range(n), labels, fontsize=8 if n > 10 else 10)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.6, label="share of the gold label's memes")
    return _save(fig, path)


def _threshold_chart(gold: np.ndarray, proba: np.ndarray, model_f1: float, path: Path) -> tuple[str, float, float]:
    f1 = np.array([semeval_scores(gold, (proba >= t).astype(int))["micro_f1"] for t in THRESHOLDS])
    best = int(np.argmax(f1))
    fig = _figure(7, 4)
    ax = fig.add_subplot()
    ax.plot(THRESHOLDS, f1, marker="o", color=ACCENT, label="one global threshold")
    ax.axhline(model_f1, color="#d9822b", linestyle="--", label=f"model's decisions ({model_f1:.3f})")
    ax.annotate(f"best {f1[best]:.3f} at {THRESHOLDS[best]:.2f}", (THRESHOLDS[best], f1[best]),
                textcoords="offset points", xytext=(0, 10), ha="center", fontsize=9)
    ax.set_xlabel("decision threshold (same for every label)")
    ax.set_ylabel("micro-F1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, max(1e-3, f1.max(), model_f1) * 1.15)
    ax.set_title("Micro-F1 against a global decision threshold")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower center", fontsize=9)
    return _save(fig, path), float(THRESHOLDS[best]), float(f1[best])


def _sections(task: Task, gold: np.ndarray, pred: np.ndarray, out_dir: Path,
              proba: np.ndarray | None) -> list[tuple[str, str | list, str | None]]:
    """The report as (heading, body, image file) parts; body is text or table rows."""
    scores = task_scores(task, gold, pred)
    rows = per_label_table(gold, pred, task.labels)
    parts: list[tuple[str, str | list, str | None]] = [
        ("Summary", [{"metric": k, "value": f"{v:.4f}"} for k, v in scores.items()], None),
        ("Per label", [{"label": r["label"], "precision": f"{r['precision']:.3f}", "recall": f"{r['recall']:.3f}",
                        "F1": f"{r['f1']:.3f}", "support": str(r["support"])} for r in rows], None),
        ("F1 per label", "", _f1_chart(rows, out_dir / "per_label_f1.png")),
    ]
    counts = gold.T @ pred  # [i, j]: memes with gold label i and predicted label j
    support = gold.sum(axis=0)
    if task.multi_label:
        chart = _matrix_chart(counts, support, task.labels, "Gold label × predicted label", "predicted label",
                              "gold label", out_dir / "cooccurrence.png")
        text = ("Each cell counts the memes that carry the row's gold label and were predicted the column's "
                "label: the diagonal holds the hits, the rest shows which labels are taken for which.")
        parts.append(("Gold and predicted labels together", text, chart))
    else:
        # One label per meme: the gold × predicted co-occurrence is exactly the confusion matrix.
        chart = _matrix_chart(counts, support, task.labels, "Confusion matrix", "predicted", "gold",
                              out_dir / "confusion.png")
        order = " (levels in order)" if task.ordinal else ""
        parts.append(("Confusion matrix", f"Rows are gold labels, columns predictions{order}; cells count memes.",
                      chart))
    if proba is not None and task.multi_label:
        name, at, best = _threshold_chart(gold, proba, scores["micro_f1"], out_dir / "threshold_sweep.png")
        text = (f"With one threshold for all labels the best micro-F1 is {best:.4f} at {at:.2f}; "
                f"the model's own decisions give {scores['micro_f1']:.4f}.")
        parts.append(("Decision threshold", text, name))
    return parts


def _markdown(title: str, intro: str, parts: list) -> str:
    lines = [f"# {title}", "", intro, ""]
    for heading, body, image in parts:
        lines += [f"## {heading}", ""]
        if isinstance(body, list):
            header = list(body[0])
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join("---" if h in ("label", "metric") else "---:" for h in header) + "|")
            lines += ["| " + " | ".join(row[h].replace("|", "\\|") for h in header) + " |" for row in body]
            lines.append("")
        elif body:
            lines += [body, ""]
        if image:
            lines += [f"![{heading}]({image})", ""]
    return "\n".join(lines)


def _html(title: str, intro: str, parts: list) -> str:
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2rem auto;padding:0 1rem;color:#222}",
        "table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{padding:.25rem .7rem;border-bottom:1px solid #ddd}",
        "td.n{text-align:right;font-variant-numeric:tabular-nums}th{text-align:left;background:#f3f5f9}",
        "img{max-width:100%;border:1px solid #eee}",
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>",
    ]
    for heading, body, image in parts:
        out.append(f"<h2>{html.escape(heading)}</h2>")
        if isinstance(body, list):
            header = list(body[0])
            out.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>")
            for row in body:
                cells = "".join(
                    f"<td>{html.escape(row[h])}</td>" if h in ("label", "metric")
                    else f"<td class='n'>{html.escape(row[h])}</td>" for h in header
                )
                out.append(f"<tr>{cells}</tr>")
            out.append("</table>")
        elif body:
            out.append(f"<p>{html.escape(body)}</p>")
        if image:
            out.append(f"<img src='{html.escape(image)}' alt='{html.escape(heading)}'>")
    out.append("</body></html>\n")
    return "\n".join(out)


def write_report(task: Task, gold: np.ndarray, pred: np.ndarray, out_dir: str | Path,
                 proba: np.ndarray | None = None, fmt: str = "md") -> Path:
    """Write report.md (or report.html) and its PNG charts into out_dir; returns the report's path.

    gold, pred: [N, L] 0/1 matrices in task label order; proba: [N, L] scores for the threshold chart.
    """
    if fmt not in ("md", "html"):
        raise ValueError(f"report format must be 'md' or 'html', not {fmt!r}")
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    expected = (len(gold), task.num_labels)
    for name, matrix in (("gold", gold), ("pred", pred), ("proba", proba)):
        if matrix is not None and np.shape(matrix) != expected:
            raise ValueError(f"{name} has shape {np.shape(matrix)}, expected {expected}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = _sections(task, gold, pred, out_dir, None if proba is None else np.asarray(proba))
    title = f"Evaluation report: {task.name}"
    intro = f"{task.description}. {len(gold)} memes, {task.num_labels} labels."
    path = out_dir / f"report.{fmt}"
    path.write_text((_markdown if fmt == "md" else _html)(title, intro, parts), encoding="utf-8")
    return path
