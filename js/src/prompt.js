// The live comparison view: columns (one per variant) or a grid (rows are dataset items).
// Everything a model or a prompt wrote is set with textContent: it is never parsed as HTML.

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// Only thumbnails lmwidgets made itself (JPEG/PNG data URLs) are shown.
function safeSrc(src) {
  return typeof src === "string" && /^data:image\/(jpeg|png);base64,[A-Za-z0-9+/=]+$/.test(src)
    ? src
    : "";
}

function pct(value, total) {
  return `${(100 * Math.min(Math.max(Number(value) || 0, 0), total)) / (total || 1)}%`;
}

// A rectangle over a thumbnail, placed in percent of the original image's size.
function overlay(className, image, box, label) {
  const rect = h("div", className);
  rect.style.left = pct(box[0], image.width);
  rect.style.top = pct(box[1], image.height);
  rect.style.width = pct(box[2] - box[0], image.width);
  rect.style.height = pct(box[3] - box[1], image.height);
  if (label) rect.append(h("span", "lmw-boxlabel", label));
  return rect;
}

function thumbnail(image, className) {
  const frame = h("div", className || "lmw-thumb");
  const img = document.createElement("img");
  img.src = safeSrc(image.src);
  img.alt = image.name || "image";
  img.draggable = false;
  frame.append(img);
  return frame;
}

function cellView() {
  const col = h("div", "lmw-col");
  const label = h("div", "lmw-label");
  const boxes = h("div", "lmw-colboxes");
  const text = h("pre", "lmw-text");
  const answer = h("div", "lmw-answer");
  const stats = h("div", "lmw-stats");
  const note = h("div", "lmw-note");
  col.append(label, boxes, text, answer, stats, note);
  return { col, label, boxes, text, answer, stats, note, boxKey: "" };
}

// The column's boxes drawn over a thumbnail of the image they refer to, plus a text list.
function fillBoxes(v, data, images) {
  const boxes = data.boxes || [];
  const key = JSON.stringify(boxes) + images.length;
  if (key === v.boxKey) return;
  v.boxKey = key;
  v.boxes.replaceChildren();
  if (!boxes.length) return;
  const byImage = new Map();
  for (const b of boxes) {
    if (!images[b.image]) continue;
    if (!byImage.has(b.image)) byImage.set(b.image, []);
    byImage.get(b.image).push(b);
  }
  for (const [index, list] of byImage) {
    const image = images[index];
    const frame = thumbnail(image, "lmw-thumb lmw-boxed");
    for (const b of list) frame.append(overlay("lmw-box", image, [b.x1, b.y1, b.x2, b.y2], b.label));
    v.boxes.append(frame);
  }
  const listing = h("div", "lmw-boxlist");
  listing.textContent = boxes
    .map((b) => `${b.label || "box"}: (${Math.round(b.x1)}, ${Math.round(b.y1)}) – (${Math.round(b.x2)}, ${Math.round(b.y2)})`)
    .join(" · ");
  v.boxes.append(listing);
}

function fillCell(v, data, showLabel) {
  v.col.dataset.status = data.status || "";
  v.label.textContent = showLabel ? data.label || "" : "";
  v.label.style.display = showLabel ? "" : "none";
  const atBottom = v.text.scrollHeight - v.text.scrollTop - v.text.clientHeight < 24;
  if (v.text.textContent !== (data.text || "")) v.text.textContent = data.text || "";
  if (atBottom) v.text.scrollTop = v.text.scrollHeight;
  v.answer.replaceChildren();
  if (data.answer !== null && data.answer !== undefined) {
    v.answer.append("Answer: ", h("code", "", data.answer));
  }
  v.stats.textContent = data.stats || "";
  v.note.textContent = data.note || "";
}

function render({ model, el }) {
  const root = h("div", "lmw-root lmw-live");
  const header = h("div", "lmw-header");
  const title = h("div", "lmw-title");
  const status = h("span", "lmw-status");
  const stop = h("button", "lmw-stop", "Stop");
  stop.type = "button";
  stop.title = "Stop generating (the text so far is kept)";
  header.append(title, status, stop);
  const progress = h("progress", "lmw-progress");
  const gallery = h("div", "lmw-gallery");
  const regionBar = h("div", "lmw-regionbar");
  const body = h("div", "lmw-body");
  const message = h("div", "lmw-message");
  root.append(header, progress, gallery, regionBar, body, message);
  el.append(root);

  // Drawing a region on a thumbnail: drag, then "Re-run with region".
  let pending = null; // {image, box}
  let drag = null; // {image, frame, start, rect}
  const cleanups = [];

  function imagePoint(frame, image, event) {
    const r = frame.getBoundingClientRect();
    const fx = Math.min(Math.max((event.clientX - r.left) / (r.width || 1), 0), 1);
    const fy = Math.min(Math.max((event.clientY - r.top) / (r.height || 1), 0), 1);
    return [Math.round(fx * image.width), Math.round(fy * image.height)];
  }

  function renderRegionBar() {
    regionBar.replaceChildren();
    if (!pending) {
      regionBar.style.display = "none";
      return;
    }
    regionBar.style.display = "";
    const [x1, y1, x2, y2] = pending.box;
    const flag = `--region ${pending.image ? pending.image + 1 + ":" : ""}${x1},${y1},${x2},${y2}`;
    const mode = h("select", "lmw-regionmode");
    for (const [value, text] of [["box", "draw a box on the image"], ["crop", "crop to the region"]]) {
      const option = h("option", "", text);
      option.value = value;
      mode.append(option);
    }
    const rerun = h("button", "lmw-rerun", "Re-run with region");
    rerun.type = "button";
    rerun.disabled = model.get("status") === "running";
    const clear = h("button", "lmw-clear", "Clear");
    clear.type = "button";
    rerun.addEventListener("click", () => {
      model.set("region_request", { image: pending.image, box: pending.box, mode: mode.value, nonce: Date.now() });
      model.save_changes();
      pending = null;
      renderRegionBar();
    });
    clear.addEventListener("click", () => {
      pending = null;
      renderGallery();
      renderRegionBar();
    });
    regionBar.append(h("code", "lmw-regionflag", flag), mode, rerun, clear);
  }

  function renderGallery() {
    for (const fn of cleanups.splice(0)) fn();
    gallery.replaceChildren();
    const images = model.get("images") || [];
    gallery.style.display = images.length ? "" : "none";
    const drawable = model.get("can_rerun");
    images.forEach((image, index) => {
      const item = h("figure", "lmw-figure");
      const frame = thumbnail(image);
      if (image.region) frame.append(overlay("lmw-region", image, image.region, ""));
      if (pending && pending.image === index) frame.append(overlay("lmw-draft", image, pending.box, ""));
      const caption = h("figcaption", "", `${image.name || "image"} · ${image.width}×${image.height}`);
      item.append(frame, caption);
      gallery.append(item);
      if (!drawable) return;
      frame.classList.add("lmw-drawable");
      frame.title = "Drag to mark a region, then re-run with it";
      const down = (event) => {
        event.preventDefault();
        const start = imagePoint(frame, image, event);
        const rect = overlay("lmw-draft", image, [...start, ...start], "");
        frame.querySelectorAll(".lmw-draft").forEach((n) => n.remove());
        frame.append(rect);
        drag = { index, image, frame, start, rect };
      };
      frame.addEventListener("mousedown", down);
      cleanups.push(() => frame.removeEventListener("mousedown", down));
    });
  }

  function onMove(event) {
    if (!drag) return;
    const [x, y] = imagePoint(drag.frame, drag.image, event);
    const [sx, sy] = drag.start;
    const box = [Math.min(sx, x), Math.min(sy, y), Math.max(sx, x), Math.max(sy, y)];
    const fresh = overlay("lmw-draft", drag.image, box, "");
    drag.rect.replaceWith(fresh);
    drag.rect = fresh;
    drag.box = box;
  }

  function onUp() {
    if (!drag) return;
    const box = drag.box;
    const index = drag.index;
    drag = null;
    if (box && box[2] - box[0] >= 2 && box[3] - box[1] >= 2) pending = { image: index, box };
    renderGallery();
    renderRegionBar();
  }
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);

  let cells = new Map(); // "row:col" -> cell view
  let shape = "";

  function build(layout, labels, nrows, ncols) {
    body.replaceChildren();
    cells = new Map();
    if (layout === "grid") {
      const grid = h("div", "lmw-grid");
      grid.style.setProperty("--lmw-ncols", String(ncols));
      grid.append(h("div", "lmw-head lmw-rowhead", "input"));
      labels.forEach((label, c) => {
        const head = h("div", "lmw-head");
        head.append(h("div", "lmw-label", label), h("div", "lmw-score"));
        head.dataset.col = String(c);
        grid.append(head);
      });
      for (let r = 0; r < nrows; r++) {
        const rowHead = h("pre", "lmw-rowlabel");
        rowHead.dataset.row = String(r);
        grid.append(rowHead);
        for (let c = 0; c < ncols; c++) {
          const v = cellView();
          cells.set(`${r}:${c}`, v);
          grid.append(v.col);
        }
      }
      body.append(grid);
    } else {
      const columns = h("div", "lmw-columns");
      columns.style.setProperty("--lmw-ncols", String(Math.min(Math.max(ncols, 1), 4)));
      for (let c = 0; c < ncols; c++) {
        const v = cellView();
        cells.set(`0:${c}`, v);
        columns.append(v.col);
      }
      body.append(columns);
    }
  }

  function renderCells() {
    const data = model.get("columns") || [];
    const layout = model.get("layout") || "columns";
    const labels = model.get("labels") || [];
    const nrows = layout === "grid" ? Math.max(0, ...data.map((d) => (d.row || 0) + 1)) : 1;
    const ncols = layout === "grid" ? labels.length : data.length;
    const next = `${layout}|${nrows}|${ncols}|${labels.join("\u0000")}`;
    if (next !== shape) {
      build(layout, labels, nrows, ncols);
      shape = next;
    }
    const images = model.get("images") || [];
    data.forEach((d, i) => {
      const key = layout === "grid" ? `${d.row || 0}:${d.col || 0}` : `0:${i}`;
      const v = cells.get(key);
      if (v) {
        fillCell(v, d, layout !== "grid");
        fillBoxes(v, d, images);
      }
      if (layout === "grid") {
        const rowHead = body.querySelector(`.lmw-rowlabel[data-row="${d.row || 0}"]`);
        if (rowHead && rowHead.textContent !== d.row_label) rowHead.textContent = d.row_label || "";
      }
    });
    renderScores();
  }

  function renderScores() {
    const scores = model.get("scores") || {};
    const labels = model.get("labels") || [];
    body.querySelectorAll(".lmw-head[data-col]").forEach((head) => {
      const label = labels[Number(head.dataset.col)];
      const score = head.querySelector(".lmw-score");
      score.textContent = label in scores ? `accuracy ${(100 * scores[label]).toFixed(0)}%` : "";
    });
  }

  function renderStatus() {
    const s = model.get("status") || "";
    const stopping = model.get("stop_requested") && s === "running";
    status.textContent = stopping ? "stopping…" : s;
    status.dataset.status = s;
    stop.disabled = s !== "running" || model.get("stop_requested");
    const rerun = regionBar.querySelector(".lmw-rerun");
    if (rerun) rerun.disabled = s === "running";
  }

  function renderProgress() {
    const p = model.get("progress") || {};
    progress.style.display = p.total ? "" : "none";
    if (p.total) {
      progress.max = p.total;
      progress.value = p.done || 0;
      progress.title = `${p.done || 0} of ${p.total} batches`;
    }
  }

  function renderAll() {
    title.textContent = model.get("title") || "";
    message.textContent = model.get("message") || "";
    renderStatus();
    renderProgress();
    renderGallery();
    renderRegionBar();
    renderCells();
  }

  function onImages() {
    renderGallery();
    renderCells();
  }

  function onStop() {
    model.set("stop_requested", true);
    model.save_changes();
    renderStatus();
  }

  stop.addEventListener("click", onStop);
  const events = [
    ["change:columns", renderCells],
    ["change:layout", renderCells],
    ["change:labels", renderCells],
    ["change:scores", renderScores],
    ["change:status", renderStatus],
    ["change:stop_requested", renderStatus],
    ["change:progress", renderProgress],
    ["change:title", renderAll],
    ["change:message", renderAll],
    ["change:images", onImages],
    ["change:can_rerun", renderGallery],
  ];
  for (const [name, fn] of events) model.on(name, fn);
  renderAll();

  return () => {
    stop.removeEventListener("click", onStop);
    window.removeEventListener("mousemove", onMove);
    window.removeEventListener("mouseup", onUp);
    for (const fn of cleanups.splice(0)) fn();
    for (const [name, fn] of events) model.off(name, fn);
    root.remove();
  };
}

export default { render };
