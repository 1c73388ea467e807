// The live comparison view. Renders model text with textContent only: nothing a model or a
// prompt writes is ever parsed as HTML.

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
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
  const columns = h("div", "lmw-columns");
  const message = h("div", "lmw-message");
  root.append(header, progress, columns, message);
  el.append(root);

  const views = [];

  function columnView() {
    const col = h("div", "lmw-col");
    const label = h("div", "lmw-label");
    const text = h("pre", "lmw-text");
    const answer = h("div", "lmw-answer");
    const stats = h("div", "lmw-stats");
    const note = h("div", "lmw-note");
    col.append(label, text, answer, stats, note);
    columns.append(col);
    return { col, label, text, answer, stats, note, stick: true };
  }

  function renderColumns() {
    const data = model.get("columns") || [];
    while (views.length < data.length) views.push(columnView());
    while (views.length > data.length) views.pop().col.remove();
    columns.style.setProperty("--lmw-ncols", String(Math.min(Math.max(data.length, 1), 4)));
    data.forEach((column, i) => {
      const v = views[i];
      v.col.dataset.status = column.status || "";
      v.label.textContent = column.label || "";
      const atBottom = v.text.scrollHeight - v.text.scrollTop - v.text.clientHeight < 24;
      if (v.text.textContent !== column.text) v.text.textContent = column.text || "";
      if (atBottom) v.text.scrollTop = v.text.scrollHeight;
      v.answer.replaceChildren();
      if (column.answer !== null && column.answer !== undefined) {
        v.answer.append("Answer: ", h("code", "", column.answer));
      }
      v.stats.textContent = column.stats || "";
      v.note.textContent = column.note || "";
    });
  }

  function renderStatus() {
    const s = model.get("status") || "";
    status.textContent = s;
    status.dataset.status = s;
    stop.disabled = s !== "running" || model.get("stop_requested");
    if (model.get("stop_requested") && s === "running") status.textContent = "stopping…";
  }

  function renderProgress() {
    const p = model.get("progress") || {};
    if (p.total) {
      progress.style.display = "";
      progress.max = p.total;
      progress.value = p.done || 0;
    } else {
      progress.style.display = "none";
    }
  }

  function renderAll() {
    title.textContent = model.get("title") || "";
    message.textContent = model.get("message") || "";
    renderStatus();
    renderProgress();
    renderColumns();
  }

  function onStop() {
    model.set("stop_requested", true);
    model.save_changes();
    renderStatus();
  }

  stop.addEventListener("click", onStop);
  const events = [
    ["change:columns", renderColumns],
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
