// ui-draw.mjs SETTINGS.json: the web UI's draw time of one batch, for
// scripts/bench (phase "ui"). Headless Chromium (Debian's) driven by
// playwright-core opens the batch page LOADS times, each time after another
// page, and prints one JSON line per load: the page's own figures (the
// #dag-box data-* attributes: asked → drawn, the API's answer, the layout)
// and the time from navigation. Every request must go to 127.0.0.1.
// Settings: {url, batch, npm_dir, chromium, loads}.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const s = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const { chromium } = createRequire(path.join(s.npm_dir, "node_modules", "_"))("playwright-core");
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tr-bench-ui-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: s.chromium,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 860 },
});
let code = 0;
try {
  await context.route("**/*", (route) =>
    new URL(route.request().url()).hostname === "127.0.0.1" ? route.continue() : route.abort());
  const page = context.pages()[0] || await context.newPage();
  for (let i = 0; i < s.loads; i++) {
    await page.goto(`${s.url}/ui/#/tasks?page_size=20`);
    await page.locator("#tasks-table").waitFor({ timeout: 30000 });
    const t0 = Date.now();
    await page.goto(`${s.url}/ui/#/batches/${s.batch}`);
    await page.locator("#dag-box[data-draw-ms]").waitFor({ state: "attached", timeout: 60000 });
    const attr = (n) => page.getAttribute("#dag-box", n).then(Number);
    console.log(JSON.stringify({
      wall_ms: Date.now() - t0, drawn_ms: await attr("data-draw-ms"),
      fetch_ms: await attr("data-fetch-ms"), layout_ms: await attr("data-layout-ms"),
      nodes: await page.locator("svg.dag a.node-link").count(),
    }));
  }
} catch (e) {
  code = 1;
  console.error(`ui-draw: ${e.stack}`);
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
