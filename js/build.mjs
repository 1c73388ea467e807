// Bundles one ES module per widget from src/ into ../lmwidgets/static/.
import * as esbuild from "esbuild";
import { readdirSync } from "node:fs";

const entryPoints = readdirSync("src")
  .filter((f) => (f.endsWith(".js") || f.endsWith(".css")) && !f.startsWith("_"))
  .map((f) => `src/${f}`);

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
