// A real browser session on the demo shop: headless Debian Chromium loads the page with the tag,
// browses, logs in, buys, waits for the offer slot to be filled, clicks an offer, then leaves the page
// (which flushes the tag's queue with sendBeacon). Prints what it did as JSON on stdout; the Rust test
// tailor/tests/browser.rs checks the result against the profile and the offer counters.
//
// Usage: node collector/tag/test/browser.mjs BASE_URL MEMBER_ID
import { chromium } from "playwright-core";

const [base, member] = process.argv.slice(2);
if (!base || !member) {
  console.error("usage: browser.mjs BASE_URL MEMBER_ID");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const log = [];
try {
  // A shopper's browser, not a crawler: headless Chromium announces itself as "HeadlessChrome", which
  // the collector rightly flags as a bot, and bot traffic feeds no shared model (popularity,
  // co-visitation) that this session's recommendations rely on.
  const page = await browser.newPage({
    viewport: { width: 1280, height: 900 },
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  });
  page.on("console", (m) => log.push(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  const sent = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/events")) {
      for (const e of JSON.parse(r.postData() || "[]")) sent.push(e.type);
    }
  });

  await page.goto(base + "/");
  // The async tag replaces the command-queue array with its API once loaded.
  await page.waitForFunction(() => window.tailor && !Array.isArray(window.tailor), null, { timeout: 15000 });

  const view = async (id) => {
    await page.click(`.card[data-tailor-item="${id}"] .cat`);
    await page.waitForTimeout(200);
  };
  await view("headlamp"); // anonymous browsing
  await page.fill('[data-testid="member"]', member);
  await page.click('[data-testid="login"]');
  await view("tent-2p");
  await view("stove");
  await page.click('[data-testid="add-tent-2p"]');
  await page.click('[data-testid="add-stove"]');
  await page.click('[data-testid="buy"]');
  const order = await page.evaluate(() => window.lastOrder);

  // The profile and models update asynchronously (collector → Kafka → processor → Redis); ask the
  // tag to refill the slot until the recommender has something for this member.
  let slot = [];
  for (let i = 0; i < 60 && !slot.length; i++) {
    await page.evaluate(() => window.tailor.fill());
    await page.waitForTimeout(1000);
    slot = await page.$$eval('[data-tailor-slot="recommended"] a[data-tailor-item]', (as) =>
      as.map((a) => a.dataset.tailorItem)
    );
  }
  if (!slot.length) throw new Error("the offer slot was never filled");
  // Every field is rendered as text: an item named like markup shows as its name, runs nothing.
  const rendered = await page.$$eval('[data-tailor-slot="recommended"] a[data-tailor-item]', (as) =>
    as.map((a) => a.textContent)
  );
  const markup = await page.$$eval('[data-tailor-slot="recommended"] img, [data-tailor-slot="recommended"] script', (els) => els.length);
  const pwned = await page.evaluate(() => window.__pwned === 1);
  // Let the IntersectionObserver see the slot and the tag send the impression, then click an offer.
  await page.waitForTimeout(1500);
  await page.click(`[data-tailor-slot="recommended"] a[data-tailor-item="${slot[0]}"]`);
  await page.waitForTimeout(300);
  await page.evaluate(() => window.tailor.flush());
  await page.waitForTimeout(1500);
  // Leaving the page sends the final page ping and whatever is still queued with sendBeacon.
  await page.close({ runBeforeUnload: true });

  console.log(JSON.stringify({ member, order, viewed: ["headlamp", "tent-2p", "stove"], bought: ["tent-2p", "stove"], slot, sent, rendered, markup, pwned }));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  console.error(log.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
