// The tag's privacy switches in a real headless Chromium: with consent pending it stores nothing (no
// cookie, no localStorage) yet still sends events with in-memory ids; after tailor.consent(true) it
// persists them; with data-respect-dnt="true" and Global Privacy Control on, it sends nothing at all.
// Prints a JSON report; exits 1 on the first broken promise.
//
// Usage: node collector/tag/test/privacy.mjs BASE_URL
import { launch } from "./chromium.mjs";
import { createServer } from "node:http";

const [base] = process.argv.slice(2);
const pages = {
  "/pending": `<script src="${base}/tag.js" data-site="demo" data-consent="pending"></script>`,
  "/dnt": `<script src="${base}/tag.js" data-site="demo" data-respect-dnt="true"></script>`,
};
const shop = createServer((req, res) => {
  res.writeHead(200, { "content-type": "text/html" }).end(`<!doctype html><title>privacy</title>${pages[req.url] || ""}`);
});
await new Promise((ok) => shop.listen(0, "127.0.0.1", ok));
const origin = `http://127.0.0.1:${shop.address().port}`;
const browser = await launch();
const report = {};
const fail = (why) => {
  throw new Error(why + " " + JSON.stringify(report));
};
try {
  // Consent pending: events flow, nothing is stored.
  const page = await browser.newPage();
  const sent = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/events")) sent.push(...JSON.parse(r.postData()).map((e) => e.type));
  });
  await page.goto(origin + "/pending");
  await page.waitForFunction(() => window.tailor && !Array.isArray(window.tailor));
  await page.evaluate(() => window.tailor.flush());
  await page.waitForTimeout(1500);
  const stored = async () =>
    page.evaluate(() => ({
      cookies: document.cookie,
      storage: Object.keys(localStorage).filter((k) => k.startsWith("_tailor_")),
    }));
  report.pending = { sent: [...sent], ...(await stored()) };
  if (!sent.includes("page_view")) fail("no page view sent without consent");
  if (report.pending.cookies.includes("_tailor_") || report.pending.storage.length) fail("stored ids without consent");
  await page.evaluate(() => window.tailor.consent(true));
  report.granted = await stored();
  if (!report.granted.cookies.includes("_tailor_aid") || !report.granted.storage.includes("_tailor_aid")) {
    fail("ids not persisted after consent");
  }
  await page.evaluate(() => window.tailor.consent(false));
  report.withdrawn = await stored();
  if (report.withdrawn.cookies.includes("_tailor_") || report.withdrawn.storage.length) fail("ids kept after withdrawal");
  await page.close();

  // Do-Not-Track / Global Privacy Control honoured: nothing leaves the page.
  const dnt = await browser.newPage();
  await dnt.addInitScript(() => Object.defineProperty(navigator, "globalPrivacyControl", { value: true }));
  const dntSent = [];
  dnt.on("request", (r) => {
    if (r.url().endsWith("/v1/events")) dntSent.push(r.url());
  });
  await dnt.goto(origin + "/dnt");
  await dnt.waitForFunction(() => window.tailor && !Array.isArray(window.tailor));
  await dnt.evaluate(() => {
    window.tailor.track("should_not_leave", {});
    window.tailor.flush();
  });
  await dnt.waitForTimeout(1500);
  report.dnt = { sent: dntSent.length };
  if (dntSent.length) fail("events sent despite Global Privacy Control");
  console.log(JSON.stringify(report));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  process.exitCode = 1;
} finally {
  await browser.close();
  shop.close();
}
