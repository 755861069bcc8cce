// A shopper buys through a campaign's offer: headless Debian Chromium loads the demo shop, logs in,
// waits until the tag fills the offer slot with the campaign's offer (rendered as text, its token on
// the link), lets the tag report the impression, clicks the offer, then buys. Prints what it saw as
// JSON; tailor/tests/browser.rs checks the campaign's report counts the impression, the click and
// the purchase as a conversion with its revenue.
//
// Usage: node collector/tag/test/offer.mjs BASE_URL MEMBER_ID
import { launch, openShop, shopper } from "./chromium.mjs";

const [base, member] = process.argv.slice(2);
if (!base || !member) {
  console.error("usage: offer.mjs BASE_URL MEMBER_ID");
  process.exit(2);
}

const browser = await launch();
let log = [];
try {
  const shop = await shopper(browser);
  const { page, sent } = shop;
  log = shop.log;
  await openShop(page, base);
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

  console.log(JSON.stringify({ member, offer, url, order, sent: sent.map((e) => ({ type: e.type, token: !!e.token })) }));
} catch (e) {
  console.error(String(e && e.stack ? e.stack : e));
  console.error(log.join("\n"));
  process.exitCode = 1;
} finally {
  await browser.close();
}
