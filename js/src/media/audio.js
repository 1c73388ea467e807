// @ts-check
// The audio kind's preview: a waveform picture, the name and duration, and a play control.
//
// The synced state holds only the waveform (a small PNG): a saved notebook keeps no audio. The
// play control asks the kernel for the clip ({type: "audio", index}: its index among the
// prompt's audio clips) and plays the WAV data URL it answers with ({type: "audio", index,
// src}); with no kernel (a reopened notebook) it says so.
import { button, h, listen } from "../dom.js";
import { registerPreview } from "./registry.js";

/** @typedef {import("../types.js").AudioThumb} AudioThumb */

/**
 * Only waveform pictures lmwidgets drew itself (PNG data URLs) are shown.
 * @param {unknown} src
 * @returns {string}
 */
export function safeWaveform(src) {
  return typeof src === "string" && /^data:image\/png;base64,[A-Za-z0-9+/=]+$/.test(src) ? src : "";
}

/**
 * Only WAV data URLs (what the kernel sends for the play control) are played.
 * @param {unknown} src
 * @returns {string}
 */
export function safeWav(src) {
  return typeof src === "string" && /^data:audio\/wav;base64,[A-Za-z0-9+/=]+$/.test(src) ? src : "";
}

/**
 * ``seconds`` as ``m:ss.s`` (``0:02.5``).
 * @param {unknown} seconds
 */
export function formatDuration(seconds) {
  const total = Math.max(Number(seconds) || 0, 0);
  const minutes = Math.floor(total / 60);
  const rest = (total - minutes * 60).toFixed(1).padStart(4, "0");
  return `${minutes}:${rest}`;
}

/**
 * The caption of a clip: its name, duration and, for a --clip, the part asked about.
 * @param {AudioThumb} clip
 */
export function audioCaption(clip) {
  const part = Array.isArray(clip.clip) ? ` (${Number(clip.clip[0])}–${Number(clip.clip[1])} s)` : "";
  return `${clip.name || "audio"} · ${formatDuration(clip.duration)}${part}`;
}

/**
 * One clip as a figure: waveform, caption and a play button that fetches the audio from the
 * kernel on demand.
 * @param {AudioThumb} clip
 * @param {number} index the clip's place among the prompt's audio clips
 * @param {import("../types.js").Model | null} model the widget's model (null: no play control)
 * @returns {{ node: HTMLElement, dispose: () => void }}
 */
export function audioFigure(clip, index, model) {
  const figure = h("figure", "lmw-figure lmw-audio");
  const frame = h("div", "lmw-wave");
  const img = h("img");
  img.src = safeWaveform(clip.src);
  img.alt = `waveform of ${clip.name || "audio"}`;
  img.draggable = false;
  frame.append(img);
  const caption = h("figcaption", "", audioCaption(clip));
  figure.append(frame, caption);
  /** @type {(() => void)[]} */
  const cleanups = [];
  if (model) {
    const play = button("lmw-play", "▶ play", "Play the clip (sent by the kernel; not saved)");
    const note = h("span", "lmw-audio-note");
    caption.append(" ", play, note);
    /** @param {unknown} msg */
    const receive = (msg) => {
      const m = /** @type {{type?: unknown, index?: unknown, src?: unknown, error?: unknown}} */ (msg);
      if (!m || m.type !== "audio" || m.index !== index) return;
      const src = safeWav(m.src);
      if (!src) {
        note.textContent = typeof m.error === "string" ? ` ${m.error}` : " audio unavailable";
        return;
      }
      const player = h("audio", "lmw-player");
      player.controls = true;
      player.src = src;
      play.replaceWith(player);
      note.textContent = "";
      player.play().catch(() => {});
    };
    model.on("msg:custom", receive);
    cleanups.push(() => model.off("msg:custom", receive));
    cleanups.push(
      listen(play, "click", () => {
        note.textContent = " loading…";
        model.send({ type: "audio", index });
        // No answer (no kernel: a reopened notebook) leaves a hint instead of a silent button.
        const timer = setTimeout(() => {
          if (note.textContent === " loading…") note.textContent = " needs the running kernel";
        }, 5000);
        cleanups.push(() => clearTimeout(timer));
      }),
    );
  }
  return {
    node: figure,
    dispose: () => {
      for (const fn of cleanups) fn();
    },
  };
}

registerPreview("audio", (item, context) => {
  const thumb = /** @type {AudioThumb} */ (/** @type {unknown} */ (item));
  const clip = audioFigure(thumb, context.index, context.model || null);
  context.cleanups.push(clip.dispose);
  return clip.node;
});
