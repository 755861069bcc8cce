// A shopper buys through a campaign's offer: headless Debian Chromium loads the demo shop, logs in,
// waits until the tag fills the offer slot with the campaign's offer (rendered as text, its token on
// the link), lets the tag report the impression, clicks the offer, then buys. Prints what it saw as
// JSON; tailor/tests/browser.rs checks the campaign's report counts the impression, the click and
// the purchase as a conversion with its revenue.
//
// Usage: node collector/tag/test/offer.mjs BASE_URL MEMBER_ID
import { chromium } from "playwright-core";

const [base, member] = process.argv.slice(2);
if (!base || !member) {
  console.error("usage: offer.mjs BASE_URL MEMBER_ID");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const log = [];
try {
  const page = await browser.newPage({
    viewport: { width: 1280, height: 900 },
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  });
  page.on("console", (m) => log.push(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  const sent = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/events")) {
      for (const e of JSON.parse(r.postData() || "[]")) sent.push({ type: e.type, token: !!e.token });
    }
  });

  await page.goto(base + "/");
  await page.waitForFunction(() => window.tailor && !Array.isArray(window.tailor), null, { timeout: 15000 });
  await page.fill('[data-testid="member"]', member);
  await page.click('[data-testid="login"]');

  const offerSel = '[data-tailor-slot="recommended"] a.tailor-offer';
  let offer = null;
  for (let i = 0; i < 60 && !offer; i++) {
    await page.evaluate(() => window.tailor.fill());
    await page.waitForTimeout(1000);
    offer = await page.$$eval(offerSel, (as) =>
      as.length
        ? { text: as[0].textContent, href: as[0].getAttribute("href"), reason: as[0].title, token: !!as[0].dataset.tailorToken, markup: as[0].querySelectorAll("img, script").length }
        : null
    );
  }
  if (!offer) throw new Error("the slot never showed the campaign's offer");
  // Let the IntersectionObserver see the slot and the tag send the offer's impression; then click it.
  await page.waitForTimeout(1500);
  await page.click(offerSel);
  await page.waitForTimeout(300);
  const url = page.url();
  await page.click('[data-testid="add-tent-2p"]');
  await page.click('[data-testid="add-stove"]');
  await page.click('[data-testid="buy"]');
  const order = await page.evaluate(() => window.lastOrder);
  await page.evaluate(() => window.tailor.flush());
  await page.waitForTimeout(1500);
  await page.close({ runBeforeUnload: true });

  console.log(JSON.stringify({ member, offer, url, order, sent }));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  console.error(log.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
