#!/usr/bin/env node
// Record a HAR with a real browser through a running bordergate, for
// tests/integration/test_browser_har.py.
//
//   node record_har.js PAGE_URL HAR_PATH
//
// Opens PAGE_URL (a page served through a bordergate route) in headless
// Chromium (Debian's /usr/bin/chromium, or $BG_CHROMIUM, through
// playwright-core) with Playwright's recordHar. The page's own script sends
// fetch() requests with JSON, form and multipart bodies to paths bordergate
// routes abroad and at home (same origin: no CORS), and when it is done
// sets <body data-state="done"> and window.__results (one object per fetch:
// name, status, the X-Bordergate-Decision header). The script waits for
// that, closes the context (which writes HAR_PATH) and prints
// {"results": [...], "console_errors": [...]} on stdout.
'use strict';

const { chromium } = require('playwright-core');

async function main() {
  const [url, harPath] = process.argv.slice(2);
  if (!url || !harPath) {
    process.stderr.write('usage: node record_har.js PAGE_URL HAR_PATH\n');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: process.env.BG_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
    headless: true,
  });
  const out = { console_errors: [] };
  try {
    const context = await browser.newContext({
      recordHar: { path: harPath, content: 'embed', mode: 'full' },
    });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
    page.on('pageerror', (e) => out.console_errors.push(String(e)));
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('body[data-state="done"]', { timeout: 60000 });
    out.results = await page.evaluate(() => window.__results);
    await context.close(); // writes the HAR
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
