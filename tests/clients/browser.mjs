// The official browser trackers in a real headless Chromium, pointed at Tailor unchanged:
// @snowplow/browser-tracker with the snowplow-ecommerce plugin (POST or GET), or @segment/analytics-next.
// The shop page is served from its own origin (a local server on another port), so the requests are
// cross-origin exactly as on a real shop, CORS included.
//
// Usage: node tests/clients/browser.mjs BASE_URL RUN_ID snowplow-post|snowplow-get|segment
// Prints a JSON summary; exits 1 if any request to Tailor failed or the tracker reported an error.
import { chromium } from "playwright-core";
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [base, run, client] = process.argv.slice(2);
if (!base || !run || !client) {
  console.error("usage: browser.mjs BASE_URL RUN_ID snowplow-post|snowplow-get|segment");
  process.exit(2);
}
const here = dirname(fileURLToPath(import.meta.url));
const bundle = readFileSync(join(here, "browser/dist/trackers.js"));
const page_html = `<!doctype html><html><head><title>Two-person tent</title>
<script src="/trackers.js"></script></head><body><h1>Two-person tent</h1></body></html>`;
const shop = createServer((req, res) => {
  if (req.url.startsWith("/trackers.js")) {
    res.writeHead(200, { "content-type": "application/javascript" }).end(bundle);
  } else {
    res.writeHead(200, { "content-type": "text/html" }).end(page_html);
  }
});
await new Promise((ok) => shop.listen(0, "127.0.0.1", ok));
const shopUrl = `http://127.0.0.1:${shop.address().port}/p/tent-2p?utm_source=newsletter&utm_medium=email`;

const member = `${client}-${run}`;
const order = `order-${member}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const responses = [];
const log = [];
let exit = 0;
try {
  const page = await browser.newPage();
  page.on("console", (m) => log.push(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    if (r.url().startsWith(base)) responses.push({ url: r.url(), status: 0, error: r.failure()?.errorText });
  });
  page.on("response", (r) => {
    if (r.url().startsWith(base) && r.request().method() != "OPTIONS") {
      responses.push({ url: r.url().split("?")[0], status: r.status() });
    }
  });
  await page.goto(shopUrl);
  await page.waitForFunction(() => window.clients);

  if (client.startsWith("snowplow")) {
    const method = client.endsWith("get") ? "get" : "post";
    await page.evaluate(
      async ({ base, method, member, order }) => {
        const { snowplow: sp, ecommerce: ec } = window.clients;
        sp.newTracker("sp", base, {
          appId: "demo",
          eventMethod: method,
          bufferSize: 1,
          plugins: [ec.SnowplowEcommercePlugin()],
        });
        const tent = { id: "tent-2p", name: "Two-person tent", category: "camping", price: 189, currency: "EUR" };
        const socks = { id: "socks-wool", name: "Merino socks", category: "clothing", price: 19, currency: "EUR", quantity: 1 };
        sp.trackPageView();
        ec.trackProductView(tent);
        sp.setUserId(member);
        sp.trackStructEvent({ category: "account", action: "login" });
        ec.trackAddToCart({ total_value: 189, currency: "EUR", products: [{ ...tent, quantity: 1 }] });
        ec.trackTransaction({
          transaction_id: order,
          revenue: 208,
          currency: "EUR",
          payment_method: "card",
          total_quantity: 2,
          products: [{ ...tent, quantity: 1 }, socks],
        });
        sp.flushBuffer();
      },
      { base, method, member, order }
    );
  } else {
    const errors = await page.evaluate(
      async ({ base, member, order }) => {
        const host = base.replace(/^https?:\/\//, "") + "/v1";
        const errors = [];
        // cdnSettings: the settings Segment's CDN would serve, so nothing is fetched from segment.com.
        const [analytics] = await window.clients.AnalyticsBrowser.load(
          {
            writeKey: "demo",
            cdnSettings: { integrations: { "Segment.io": { apiKey: "demo", apiHost: host, protocol: "http" } } },
          },
          { retryQueue: false }
        );
        analytics.on("error", (e) => errors.push(String(e && e.reason)));
        await analytics.page("Product", "Two-person tent");
        await analytics.track("Product Viewed", { product_id: "tent-2p", category: "camping", price: 189 });
        await analytics.identify(member, { plan: "gold" });
        await analytics.track("Product Added", { product_id: "tent-2p", category: "camping", price: 189, quantity: 1 });
        await analytics.track("Order Completed", {
          order_id: order,
          total: 208,
          currency: "EUR",
          products: [
            { product_id: "tent-2p", category: "camping", price: 189, quantity: 1 },
            { product_id: "socks-wool", category: "clothing", price: 19, quantity: 1 },
          ],
        });
        await analytics.track("Newsletter Subscribed", { list: "weekly" });
        return errors;
      },
      { base, member, order }
    );
    if (errors.length) throw new Error("analytics-next reported: " + errors.join("; "));
  }
  // Let the trackers' requests complete: wait until Tailor has answered and nothing new came for 1.5 s.
  let seen = -1;
  for (let i = 0; i < 40 && (responses.length == 0 || responses.length != seen); i++) {
    seen = responses.length;
    await page.waitForTimeout(1500);
  }
  if (!responses.length || responses.some((r) => r.status < 200 || r.status >= 300)) exit = 1;
} catch (e) {
  log.push(String(e && e.stack ? e.stack : e));
  exit = 1;
} finally {
  await browser.close();
  shop.close();
}
console.log(JSON.stringify({ member, order, revenue: 208, responses }));
if (exit) console.error(log.join("\n"));
process.exit(exit);
