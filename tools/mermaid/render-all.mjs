// Render many Mermaid diagrams with ONE headless browser and report each one's outcome.
//
// Usage: node render-all.mjs <blocks.json> [<out-dir>]
//   blocks.json: [{"id": "docs/x.md#2 (line 40)", "source": "graph TD\n  A --> B"}, ...]
//   stdout:      [{"id": ..., "ok": true|false, "error": "..."|null, "bytes": <svg size>}]
//
// Two passes, one browser:
//  1. fast: ONE page loads mermaid (the copy @mermaid-js/mermaid-cli depends on) once and calls
//     mermaid.render() for every diagram in turn -- what mmdc does per diagram, minus a page
//     load each time;
//  2. authoritative: every diagram the fast pass rejects is rendered again with renderMermaid()
//     from @mermaid-js/mermaid-cli -- the very function `mmdc` runs for each block of a Markdown
//     file -- and reported as failed only if that fails too (its error is the one reported).
// Unlike mmdc on a Markdown file, it keeps going after a failure, so one run names every
// diagram that does not render. The browser is the system's chromium, configured in
// puppeteer-config.json beside this file (CHROMIUM_PATH overrides its executablePath).
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
const concurrency = Math.max(1, Number(process.env.MERMAID_CONCURRENCY || 2));

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

const mermaidBundle = path.join(
  path.dirname(url.fileURLToPath(import.meta.resolve("mermaid"))),
  "mermaid.min.js",
);

const fastPass = async (browser) => {
  const page = await browser.newPage();
  try {
    await page.setContent("<!doctype html><html><body><div id=\"box\"></div></body></html>");
    await page.addScriptTag({ path: mermaidBundle });
    await page.evaluate(() => {
      globalThis.mermaid.initialize({ startOnLoad: false });
    });
    const out = [];
    for (const [index, block] of blocks.entries()) {
      const result = await withTimeout(
        page.evaluate(
          async (definition, id) => {
            const box = document.getElementById("box");
            try {
              const { svg } = await globalThis.mermaid.render(id, definition, box);
              return { ok: true, error: null, bytes: svg.length };
            } catch (err) {
              return { ok: false, error: String((err && err.message) || err), bytes: 0 };
            } finally {
              box.innerHTML = "";
            }
          },
          block.source,
          `diagram-${index + 1}`,
        ),
        perDiagramMs,
      ).catch((err) => ({ ok: false, error: String(err.message || err), bytes: 0 }));
      out.push({ id: block.id, ...result });
    }
    return out;
  } finally {
    await page.close();
  }
};

const browser = await puppeteer.launch(config);
let results;
try {
  results = await fastPass(browser);
  const failed = results.map((r, i) => (r.ok ? -1 : i)).filter((i) => i >= 0);
  let next = 0;
  const worker = async () => {
    while (next < failed.length) {
      const index = failed[next++];
      const block = blocks[index];
      try {
        const { data } = await withTimeout(
          renderMermaid(browser, block.source, "svg", { fontEmbed: false }),
          perDiagramMs,
        );
        results[index] = { id: block.id, ok: true, error: null, bytes: data.length };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        results[index] = { id: block.id, ok: false, error: firstLines(message, 6), bytes: 0 };
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  if (outDir) {
    for (const [index, block] of blocks.entries()) {
      if (!results[index].ok) continue;
      const { data } = await renderMermaid(browser, block.source, "svg", { fontEmbed: false });
      fs.writeFileSync(path.join(outDir, `diagram-${index + 1}.svg`), data);
    }
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results));
