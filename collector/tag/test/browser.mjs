// A real browser session on the demo shop: headless Debian Chromium loads the page with the tag,
// browses, logs in, buys, waits for the offer slot to be filled, clicks an offer, then leaves the page
// (which flushes the tag's queue with sendBeacon). Prints what it did as JSON on stdout; the Rust test
// tailor/tests/browser.rs checks the result against the profile and the offer counters.
//
// Usage: node collector/tag/test/browser.mjs BASE_URL MEMBER_ID
import { launch, openShop, shopper } from "./chromium.mjs";

const [base, member] = process.argv.slice(2);
if (!base || !member) {
  console.error("usage: browser.mjs BASE_URL MEMBER_ID");
  process.exit(2);
}

const browser = await launch();
let log = [];
try {
  const shop = await shopper(browser);
  const { page, sent } = shop;
  log = shop.log;
  await openShop(page, base);

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

  console.log(JSON.stringify({ member, order, viewed: ["headlamp", "tent-2p", "stove"], bought: ["tent-2p", "stove"], slot, sent: sent.map((e) => e.type), rendered, markup, pwned }));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  console.error(log.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
