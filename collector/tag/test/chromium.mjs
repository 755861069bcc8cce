// What the browser tests share: headless Debian Chromium launched the same way, and a shopper's page
// on the demo shop.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

// A shopper's browser, not a crawler: headless Chromium announces itself as "HeadlessChrome", which
// the collector rightly flags as a bot, and bot traffic feeds no shared model (popularity,
// co-visitation) that a shopper's recommendations rely on. Returns the page, the console and page
// errors seen (`log`), and every event the tag posted by fetch (`sent`; sendBeacon bodies do not
// show here).
export async function shopper(browser) {
  const page = await browser.newPage({
    viewport: { width: 1280, height: 900 },
    userAgent: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
  });
  const log = [];
  const sent = [];
  page.on("console", (m) => log.push(`console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => log.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    if (r.url().endsWith("/v1/events")) sent.push(...JSON.parse(r.postData() || "[]"));
  });
  return { page, log, sent };
}

// Opens the demo shop and waits for the async tag to replace the command-queue array with its API.
export async function openShop(page, base) {
  await page.goto(base + "/");
  await page.waitForFunction(() => window.tailor && !Array.isArray(window.tailor), null, { timeout: 15000 });
}
