// @ts-check
// Copying a column's text: navigator.clipboard where the page may use it, else a hidden
// textarea and document.execCommand("copy") (older browsers, pages served over plain http).

/**
 * Copy ``text`` to the clipboard; resolves to whether it worked.
 * @param {string} text
 * @returns {Promise<boolean>}
 */
export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall back below (permission denied, document not focused...)
  }
  return copyWithTextarea(text);
}

/** @param {string} text */
function copyWithTextarea(text) {
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.style.position = "fixed";
  area.style.top = "-1000px";
  area.style.opacity = "0";
  document.body.append(area);
  area.select();
  let done = false;
  try {
    done = document.execCommand("copy");
  } catch {
    done = false;
  }
  area.remove();
  return done;
}
