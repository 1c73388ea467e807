// @ts-check
// Small DOM helpers. Text is only ever set with textContent: nothing here parses HTML.

/**
 * A new element with an optional class and text.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {unknown} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/**
 * A button with a visible label and a tooltip.
 * @param {string} className
 * @param {string} label
 * @param {string} [title]
 */
export function button(className, label, title) {
  const node = h("button", className, label);
  node.type = "button";
  if (title) node.title = title;
  return node;
}

/**
 * Add an event listener; the returned function removes it again.
 * @template {Event} E
 * @param {EventTarget} target
 * @param {string} type
 * @param {(event: E) => void} handler
 * @returns {() => void}
 */
export function listen(target, type, handler) {
  const fn = /** @type {EventListener} */ (handler);
  target.addEventListener(type, fn);
  return () => target.removeEventListener(type, fn);
}
