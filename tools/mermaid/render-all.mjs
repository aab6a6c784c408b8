// Render many Mermaid diagrams with ONE headless browser and report each one's outcome.
//
// Usage: node render-all.mjs <blocks.json> [<out-dir>]
//   blocks.json: [{"id": "docs/x.md#2 (line 40)", "source": "graph TD\n  A --> B"}, ...]
//   stdout:      [{"id": ..., "ok": true|false, "error": "..."|null, "bytes": <svg size>}]
//
// It calls renderMermaid() from @mermaid-js/mermaid-cli -- the very function the `mmdc`
// command runs for every block of a Markdown file -- but keeps going after a failure, so one
// run names every diagram that does not render (mmdc stops at the first and does not say which).
// The browser is the system's chromium, configured in puppeteer-config.json beside this file.
import fs from "node:fs";
import path from "node:path";
import url from "node:url";
import puppeteer from "puppeteer";
import { renderMermaid } from "@mermaid-js/mermaid-cli";

const here = path.dirname(url.fileURLToPath(import.meta.url));
const [blocksPath, outDir] = process.argv.slice(2);
if (!blocksPath) {
  console.error("usage: node render-all.mjs <blocks.json> [<out-dir>]");
  process.exit(2);
}
const blocks = JSON.parse(fs.readFileSync(blocksPath, "utf-8"));
const config = JSON.parse(
  fs.readFileSync(
    process.env.PUPPETEER_CONFIG || path.join(here, "puppeteer-config.json"),
    "utf-8",
  ),
);
if (process.env.CHROMIUM_PATH) {
  config.executablePath = process.env.CHROMIUM_PATH;
}
const perDiagramMs = Number(process.env.MERMAID_TIMEOUT_MS || 20000);
const concurrency = Math.max(1, Number(process.env.MERMAID_CONCURRENCY || 3));

const withTimeout = async (promise, ms) => {
  let timer;
  const expiry = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, expiry]);
  } finally {
    clearTimeout(timer);
  }
};

const firstLines = (text, n) => String(text).split("\n").slice(0, n).join("\n");

const browser = await puppeteer.launch(config);
const results = new Array(blocks.length);
try {
  let next = 0;
  const worker = async () => {
    while (next < blocks.length) {
      const index = next++;
      const block = blocks[index];
      try {
        const { data } = await withTimeout(
          renderMermaid(browser, block.source, "svg", { fontEmbed: false }),
          perDiagramMs,
        );
        if (outDir) {
          fs.writeFileSync(path.join(outDir, `diagram-${index + 1}.svg`), data);
        }
        results[index] = { id: block.id, ok: true, error: null, bytes: data.length };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        results[index] = { id: block.id, ok: false, error: firstLines(message, 6), bytes: 0 };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results));
