// The operators' dashboard in headless Chromium: loads /ops, waits until the endpoint and stage
// charts hold data, and reports what is drawn (and any script error) as JSON; with a second argument,
// saves a screenshot there. tailor/tests/ops.rs checks the report.
//
// Usage: node collector/tag/test/ops.mjs BASE_URL [SCREENSHOT.png]
import { launch } from "./chromium.mjs";

const [base, screenshot] = process.argv.slice(2);
if (!base) {
  console.error("usage: ops.mjs BASE_URL [SCREENSHOT.png]");
  process.exit(2);
}
const browser = await launch();
const errors = [];
// The page must not reach past this process (no CDN): every other request is an error.
const foreign = [];
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("request", (r) => !r.url().startsWith(base) && foreign.push(r.url()));
  await page.goto(`${base}/ops`);
  await page.waitForSelector("body[data-loaded=true]", { timeout: 15000 });
  // Charts hold data: at least one endpoint and the processor and recommendation stages drawn.
  await page.waitForFunction(() => {
    const drawn = (sel) => [...document.querySelectorAll(sel)].filter((c) => +c.dataset.points > 0).length;
    const stages = [...document.querySelectorAll("#stages h3")].map((h) => h.textContent).join("|");
    return drawn("#endpoints canvas") >= 2 && drawn("#stages canvas") >= 4
      && stages.includes("processor batch") && stages.includes("recommendation");
  }, null, { timeout: 60000, polling: 500 });
  const charts = (sel) => page.$$eval(sel + " .card", (cards) => cards.map((c) => ({
    title: c.querySelector("h3").textContent,
    summary: c.querySelector(".sum").textContent,
    points: +c.querySelector("canvas").dataset.points,
  })));
  const report = {
    endpoints: await charts("#endpoints"),
    stages: await charts("#stages"),
    flows: await charts("#flows"),
    tiles: Object.fromEntries(await page.$$eval("#tiles .tile", (ts) =>
      ts.map((t) => [t.querySelector(".k").textContent, t.querySelector(".v").textContent]))),
    ready: await page.$eval("#ready", (e) => e.textContent),
    errors,
    foreign,
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
