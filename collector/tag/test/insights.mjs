// The marketers' insights page in headless Chromium: loads /insights for a site, waits until the
// analytics are drawn, and reports what the pictures contain (and any script error) as JSON; with a
// third argument, saves a screenshot there; with a fourth, opens the page with that admin key
// (`#key=`, as docs/security.md says). tailor/tests/mining.rs and isolation.rs check the report.
//
// Usage: node collector/tag/test/insights.mjs BASE_URL SITE [SCREENSHOT.png|""] [KEY]
import { launch } from "./chromium.mjs";

const [base, site, screenshot, key] = process.argv.slice(2);
if (!base || !site) {
  console.error("usage: insights.mjs BASE_URL SITE [SCREENSHOT.png]");
  process.exit(2);
}
const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const fragment = key ? `#key=${encodeURIComponent(key)}` : "";
  await page.goto(`${base}/insights?site=${encodeURIComponent(site)}${fragment}`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 15000 });
  const count = (sel) => page.$$eval(sel, (els) => els.length);
  const report = {
    funnel_bars: await count("#funnel rect"),
    channel_bars: await count("#channels rect"),
    hour_bars: await count("#hours rect"),
    rfm_cells: await count("#rfm rect"),
    rfm_labels: await page.$$eval("#rfm text", (ts) => ts.map((t) => t.textContent).filter(Boolean)),
    stage_bars: await count("#stages rect"),
    segment_bars: await count("#segments rect"),
    page_rows: await count("#pages tr"),
    campaign_rows: await page.$$eval("#campaigns tr", (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent))),
    campaign_intervals: await count("#campaigns svg circle"),
    errors,
  };
  if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(report));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  console.error(errors.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
