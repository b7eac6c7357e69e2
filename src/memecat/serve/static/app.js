// memecat demo page: send a meme to /v1/predict (explanation asked for), show its categories and the chosen
// category's explanation.
"use strict";

const $ = (id) => document.getElementById(id);
// file: the chosen image file (null: none, a text-only meme); image: it decoded for drawing, once loaded.
// resultFile: the file sent with the result shown, so a result is never drawn over another image.
const state = { file: null, image: null, result: null, resultFile: null, labels: null, selected: null, maxUpload: null,
                authRequired: false };

// Turbo-like colour ramp, low -> high (same stops as the legend in style.css).
const RAMP = [[48, 18, 59], [70, 134, 251], [27, 229, 181], [164, 252, 60], [251, 185, 56], [228, 70, 10], [122, 4, 3]];

function rampColour(v) {
  const x = Math.min(Math.max(v, 0), 1) * (RAMP.length - 1);
  const i = Math.min(Math.floor(x), RAMP.length - 2);
  const t = x - i;
  return RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * t));
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function problemText(response) {
  // The API answers {"detail": "..."}; anything else (a proxy page, a crash) falls back to the status.
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
  } catch (_) { /* not JSON */ }
  return response.statusText || "request failed";
}

async function loadModelInfo() {
  try {
    const [health, labels] = await Promise.all([fetch("/healthz"), fetch("/v1/labels")]);
    if (!health.ok || !labels.ok) throw new Error();
    const h = await health.json();
    state.labels = await labels.json();
    state.maxUpload = h.max_upload_bytes;
    state.authRequired = Boolean(h.auth_required);
    $("api-key-field").hidden = !state.authRequired;
    $("model-info").innerHTML = "";
    $("model-info").append("task ", bold(h.task), " · model ", bold(h.model_type));
    $("model-info").title = `model id ${h.model_id}`;
  } catch (_) {
    $("model-info").textContent = "server not reachable";
  }
}

function bold(text) {
  const b = document.createElement("b");
  b.textContent = text;
  return b;
}

// --- input ---------------------------------------------------------------------------------------
const DROP_TEXT = $("drop-text") ? $("drop-text").innerHTML : "";

function useFile(file) {
  if (!file) return clearImage();
  state.file = file;
  state.image = null;
  $("preview").hidden = true;
  $("drop-text").textContent = `${file.name} · click to choose another`;
  $("clear-image").hidden = false;
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    if (state.file !== file) return;  // another image was chosen meanwhile
    state.image = img;
    $("preview").src = url;
    $("preview").hidden = false;
    if (state.result) drawView();
  };
  img.onerror = () => showError(`${file.name}: the browser cannot display this image`);
  img.src = url;
}

function clearImage() {
  // Back to no image: what is sent next is a text-only meme.
  $("image").value = "";
  state.file = null;
  state.image = null;
  $("preview").hidden = true;
  $("preview").removeAttribute("src");
  $("drop-text").innerHTML = DROP_TEXT;
  $("clear-image").hidden = true;
  if (state.result) drawView();
}

function setUpInput() {
  const input = $("image");
  const drop = $("drop");
  input.addEventListener("change", () => useFile(input.files[0]));  // a cancelled dialog empties it
  $("clear-image").addEventListener("click", clearImage);
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      useFile(input.files[0]);
    }
  });
  $("text").addEventListener("input", () => {
    const n = $("text").value.length;
    $("count").textContent = n ? `${n} characters` : "";
  });
  $("meme-form").addEventListener("submit", submit);
  if (input.files[0]) useFile(input.files[0]);  // a reload may keep the chosen file
}

async function submit(event) {
  event.preventDefault();
  const file = state.file;  // kept in step with the file input by useFile and clearImage
  const text = $("text").value;
  if (!file && !text.trim()) return showError("Choose the meme's image, type its text, or both.");
  const key = $("api-key").value.trim();
  if (state.authRequired && !key) return showError("This server needs an API key: enter it above the button.");
  if (file && state.maxUpload && file.size > state.maxUpload) {
    return showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MiB; the limit is ` +
                     `${(state.maxUpload / 1048576).toFixed(1)} MiB.`);
  }
  showError("");
  const button = $("submit");
  button.disabled = true;
  button.textContent = "Analysing…";
  try {
    const form = new FormData();
    if (file) form.append("image", file);  // no image: a text-only meme
    form.append("text", text);  // empty: an image-only meme
    form.append("explain", "true");  // the page shows explanations; the API leaves them out unless asked
    const headers = state.authRequired ? { Authorization: `Bearer ${key}` } : {};
    const response = await fetch("/v1/predict", { method: "POST", body: form, headers });
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      const hint = retry ? ` Try again in ${retry} s.` : "";
      showError(`Error ${response.status}: ${await problemText(response)}${hint}`);
      return;
    }
    state.result = await response.json();
    state.resultFile = file;
    showModality(file, text);
    showResult();
  } catch (_) {
    showError("Could not reach the server. Is it still running?");
  } finally {
    button.disabled = false;
    button.textContent = "Analyse meme";
  }
}

function showModality(file, text) {
  const note = !file ? "No image was sent: these scores come from the text alone."
    : !text.trim() ? "No text was sent: these scores come from the image alone." : "";
  $("modality").textContent = note;
  $("modality").hidden = !note;
}

// --- categories ----------------------------------------------------------------------------------
function thresholdOf(label) {
  // Each answer carries its decision thresholds (null for a single-label task, where the top class wins).
  const category = (state.result.categories || {})[label];
  if (category) return category.threshold;
  const info = state.labels;
  if (!info || !info.thresholds) return null;
  return info.thresholds[info.labels.indexOf(label)];
}

function showResult() {
  const { labels, scores } = state.result;
  const ranked = Object.keys(scores).sort((a, b) => scores[b] - scores[a]);
  const detected = new Set(labels);
  const multiLabel = !state.labels || state.labels.multi_label;
  $("summary").textContent = multiLabel ? `${detected.size} of ${ranked.length} detected` : `predicted: ${labels[0]}`;

  const bars = $("bars");
  bars.innerHTML = "";
  const select = $("label-select");
  select.innerHTML = "";
  for (const label of ranked) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "bar" + (detected.has(label) ? " detected" : "");
    button.dataset.label = label;
    const top = document.createElement("div");
    top.className = "bar-top";
    const name = document.createElement("span");
    name.className = "bar-name";
    name.textContent = label;
    name.title = label;
    if (detected.has(label)) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = multiLabel ? "detected" : "predicted";
      name.append(badge);
    }
    const score = document.createElement("span");
    score.className = "bar-score";
    score.textContent = scores[label].toFixed(2);
    top.append(name, score);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${Math.max(scores[label] * 100, 0.5)}%`;
    track.append(fill);
    const threshold = thresholdOf(label);
    if (threshold !== null && threshold !== undefined) {
      const tick = document.createElement("div");
      tick.className = "tick";
      tick.style.left = `calc(${threshold * 100}% - 1px)`;
      tick.title = `decision threshold ${threshold.toFixed(2)}`;
      track.append(tick);
    }
    button.append(top, track);
    button.addEventListener("click", () => choose(label));
    li.append(button);
    bars.append(li);

    const option = document.createElement("option");
    option.value = label;
    option.textContent = (detected.has(label) ? "✓ " : "") + label;
    select.append(option);
  }
  $("results").hidden = false;
  $("view").hidden = false;
  choose(ranked.find((l) => detected.has(l)) || ranked[0]);
}

function choose(label) {
  state.selected = label;
  $("label-select").value = label;
  for (const bar of document.querySelectorAll(".bar")) {
    bar.classList.toggle("selected", bar.dataset.label === label);
  }
  drawView();
}

// --- explanation ---------------------------------------------------------------------------------
function drawView() {
  const explanation = (state.result.explanation || {})[state.selected] || {};
  const grid = Array.isArray(explanation.image_grid) ? explanation.image_grid : null;
  const drawn = drawCanvas(grid);
  $("legend").hidden = !(grid && drawn);
  showSimRe(explanation);
  showTokens(explanation.tokens);
  const tokens = Array.isArray(explanation.tokens) && explanation.tokens.length;
  $("no-explanation").hidden = Boolean((grid && drawn) || tokens || "be" in explanation);
}

function drawCanvas(grid) {
  // Only the image the result was computed from; a text-only result has none (its grid would mean nothing).
  const canvas = $("canvas");
  const img = state.resultFile && state.resultFile === state.file ? state.image : null;
  $("canvas-wrap").hidden = !img;
  if (!img) return false;
  const maxW = canvas.parentElement.clientWidth || 480;
  const maxH = 520;
  const scale = Math.min(maxW / img.naturalWidth, maxH / img.naturalHeight, 1.5);
  const w = Math.round(img.naturalWidth * scale);
  const h = Math.round(img.naturalHeight * scale);
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  if (grid) ctx.drawImage(heatLayer(grid, canvas.width, canvas.height), 0, 0, canvas.width, canvas.height);
  return true;
}

function heatLayer(grid, width, height) {
  // Bilinear upsampling between cell centres to a quarter-resolution layer, which the browser then
  // scales up smoothly: a soft map instead of 49 squares.
  const rows = grid.length;
  const cols = grid[0].length;
  const flat = grid.flat();
  const lo = Math.min(...flat);
  const span = Math.max(...flat) - lo || 1;
  const w = Math.max(Math.round(width / 4), cols);
  const h = Math.max(Math.round(height / 4), rows);
  const layer = document.createElement("canvas");
  layer.width = w;
  layer.height = h;
  const ctx = layer.getContext("2d");
  const pixels = ctx.createImageData(w, h);
  const opacity = $("opacity").value / 100;
  const at = (r, c) => (grid[r][c] - lo) / span;
  for (let y = 0; y < h; y++) {
    const gy = Math.min(Math.max(((y + 0.5) / h) * rows - 0.5, 0), rows - 1);
    const r0 = Math.floor(gy);
    const r1 = Math.min(r0 + 1, rows - 1);
    const ty = gy - r0;
    for (let x = 0; x < w; x++) {
      const gx = Math.min(Math.max(((x + 0.5) / w) * cols - 0.5, 0), cols - 1);
      const c0 = Math.floor(gx);
      const c1 = Math.min(c0 + 1, cols - 1);
      const tx = gx - c0;
      const v = (at(r0, c0) * (1 - tx) + at(r0, c1) * tx) * (1 - ty) + (at(r1, c0) * (1 - tx) + at(r1, c1) * tx) * ty;
      const [red, green, blue] = rampColour(v);
      const i = (y * w + x) * 4;
      pixels.data[i] = red;
      pixels.data[i + 1] = green;
      pixels.data[i + 2] = blue;
      pixels.data[i + 3] = Math.round(255 * opacity * Math.pow(v, 0.7)); // low attention stays clear
    }
  }
  ctx.putImageData(pixels, 0, 0);
  return layer;
}

function showSimRe(explanation) {
  const box = $("simre");
  if (!("be" in explanation)) {
    box.hidden = true;
    return;
  }
  const label = state.selected;
  const rows = [
    [`be: similarity to “… ${label}”`, explanation.be],
    [`not: similarity to “… not ${label}”`, explanation.not],
    ["margin (be − not)", explanation.margin ?? explanation.be - explanation.not],
  ];
  const table = document.createElement("table");
  for (const [name, value] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = name;
    const cell = tr.insertCell();
    cell.className = "num";
    cell.textContent = Number(value).toFixed(3);
  }
  const note = document.createElement("p");
  note.className = "hint";
  note.textContent = "This model compares the meme with a description that it is, and one that it is not, " +
                     "in this category; the larger margin wins.";
  box.innerHTML = "";
  box.append(note, table);
  box.hidden = false;
}

function showTokens(tokens) {
  const block = $("tokens-block");
  if (!Array.isArray(tokens) || !tokens.length) {
    block.hidden = true;
    return;
  }
  const top = Math.max(...tokens.map((t) => t.weight)) || 1;
  const out = $("tokens");
  out.innerHTML = "";
  for (const { token, weight } of tokens) {
    const span = document.createElement("span");
    span.textContent = token;
    span.title = weight.toFixed(3);
    span.style.background = `rgba(40, 89, 216, ${(0.85 * weight / top).toFixed(3)})`;
    if (weight / top > 0.55) span.style.color = "#fff";
    out.append(span, " ");
  }
  block.hidden = false;
}

document.addEventListener("DOMContentLoaded", () => {
  setUpInput();
  loadModelInfo();
  $("label-select").addEventListener("change", (e) => choose(e.target.value));
  $("opacity").addEventListener("input", () => state.result && drawView());
  window.addEventListener("resize", () => state.result && drawView());
});
