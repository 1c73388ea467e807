// Bundles one ES module (and its CSS) per widget from src/ into ../lmwidgets/static/.
// Each widget's entry is src/NAME.js; the other modules in src/ are imported by the entries.
import * as esbuild from "esbuild";
import { existsSync } from "node:fs";

const WIDGETS = ["prompt"];

const entryPoints = WIDGETS.flatMap((name) =>
  [`src/${name}.js`, `src/${name}.css`].filter((path) => existsSync(path)),
);

const options = {
  entryPoints,
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  outdir: "../lmwidgets/static",
  logLevel: "info",
};

if (process.argv.includes("--watch")) {
  const ctx = await esbuild.context(options);
  await ctx.watch();
} else {
  await esbuild.build(options);
}
