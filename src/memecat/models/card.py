"""The README.md model card written into every model folder: what it predicts, from what, how to use it."""

from __future__ import annotations

import yaml

from memecat.tasks import get_task


def _figures(metrics: dict[str, dict[str, float]]) -> list[str]:
    if not metrics:
        return ["No held-out figures were recorded for this folder; `memecat cv` measures its recipe."]
    lines = ["| measured on | " + " | ".join(next(iter(metrics.values()))) + " |",
             "|---|" + "---|" * len(next(iter(metrics.values())))]
    for where, scores in metrics.items():
        lines.append(f"| {where} | " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v)
                                                  for v in scores.values()) + " |")
    return lines


def model_card(meta: dict) -> str:
    """Markdown from a model folder's config.json content."""
    task = get_task(meta["task"])
    config = dict(meta.get("config", {}))
    encoders = [f"{kind} encoder `{config[key]}`" for kind, key in (("text", "text_encoder"), ("image", "image_encoder"))
                if key in config]
    data = ", ".join(f"{count} {'of the task' if source == 'own' else 'from ' + source}"
                     for source, count in meta.get("training_data", {}).items()) or "not recorded"
    recipe = f"the `{meta['recipe']}` recipe" if meta.get("recipe") else "a custom configuration"
    labels = "\n".join(f"- {label}" for label in task.labels)
    lines = [
        f"# memecat {meta['model_type']} for {task.name}",
        "",
        (f"{task.description[:1].upper()}{task.description[1:]}: "
         f"{'any number of' if task.multi_label else 'exactly one of'} {task.num_labels} labels per meme."),
        "",
        f"- model: `{meta['model_type']}`, built from {recipe}" + (f"; {', '.join(encoders)}" if encoders else ""),
        f"- training memes: {data}",
        f"- memecat {meta.get('memecat_version', '?')}, folder format {meta['format_version']}",
        "",
        "## Use it",
        "",
        "```bash",
        "memecat predict --model THIS_FOLDER --image meme.png --text \"the meme's text\"",
        "```",
        "",
        "```python",
        "import memecat",
        "model = memecat.load_model(\"THIS_FOLDER\")",
        "model.predict([memecat.Meme(\"1\", \"the meme's text\", image=\"meme.png\")])",
        "```",
        "",
        "## Figures",
        "",
        *_figures(meta.get("metrics") or {}),
        "",
        "## Labels",
        "",
        labels,
        "",
        "## Configuration",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).rstrip(),
        "```",
        "",
    ]
    return "\n".join(lines)
