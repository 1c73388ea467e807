// @ts-check
// The live comparison widget (anywidget module): columns of streamed text side by side, or a
// grid for datasets, with a Stop button, image thumbnails and re-running with a drawn region.
// Everything a model or a prompt wrote is set with textContent: it is never parsed as HTML.
//
// Modules: view.js (layout, events), cells.js (columns and grid cells), gallery.js
// (thumbnails), region.js (drawing a region, the re-run request), store.js (the streamed cell
// state shared by the views of one model), media/ (a preview module per media kind:
// media/registry.js, media/image.js, media/audio.js) and dom.js (helpers), types.js (JSDoc).
import { initialize, render } from "./view.js";

export default { initialize, render };
