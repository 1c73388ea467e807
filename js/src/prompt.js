// The live comparison view: columns (one per variant) or a grid (rows are dataset items).
// Everything a model or a prompt wrote is set with textContent: it is never parsed as HTML.

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function cellView() {
  const col = h("div", "lmw-col");
  const label = h("div", "lmw-label");
  const text = h("pre", "lmw-text");
  const answer = h("div", "lmw-answer");
  const stats = h("div", "lmw-stats");
  const note = h("div", "lmw-note");
  col.append(label, text, answer, stats, note);
  return { col, label, text, answer, stats, note };
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
  const body = h("div", "lmw-body");
  const message = h("div", "lmw-message");
  root.append(header, progress, body, message);
  el.append(root);

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
    data.forEach((d, i) => {
      const key = layout === "grid" ? `${d.row || 0}:${d.col || 0}` : `0:${i}`;
      const v = cells.get(key);
      if (v) fillCell(v, d, layout !== "grid");
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
  ];
  for (const [name, fn] of events) model.on(name, fn);
  renderAll();

  return () => {
    stop.removeEventListener("click", onStop);
    for (const [name, fn] of events) model.off(name, fn);
    root.remove();
  };
}

export default { render };
