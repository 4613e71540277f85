#!/usr/bin/env node
// Drive the compliance dashboard in headless Chromium (Debian's
// /usr/bin/chromium through playwright-core) and print what the page SHOWS
// as one JSON document on stdout, for tests/integration/test_dashboard.py.
//
//   node dashboard.js URL SCREENSHOT.png [TOKEN]
//
// URL is the page (http://127.0.0.1:PORT/dashboard/?from=...&to=...). With
// TOKEN, the script first checks that the page asks for the admin token,
// types it into the form, and goes on. Figures are read from the DOM
// (data-testid / data-* attributes of what is drawn), never from the API.
'use strict';

const { chromium } = require('playwright-core');

async function main() {
  const [url, shot, token] = process.argv.slice(2);
  if (!url || !shot) {
    process.stderr.write('usage: node dashboard.js URL SCREENSHOT.png [TOKEN]\n');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: process.env.BG_CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox'],
    headless: true,
  });
  const out = { console_errors: [], requests: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (m) => { if (m.type() === 'error') out.console_errors.push(m.text()); });
    page.on('pageerror', (e) => out.console_errors.push(String(e)));
    page.on('request', (r) => out.requests.push(r.url()));
    await page.goto(url, { waitUntil: 'domcontentloaded' });
    if (token !== undefined) {
      await page.waitForSelector('body[data-state="token"]', { timeout: 15000 });
      out.asked_for_token = await page.isVisible('#token');
      await page.fill('#token-input', token);
      await page.click('#token button');
    }
    await page.waitForSelector('body[data-state="ready"], body[data-state="error"]', { timeout: 30000 });
    out.state = await page.getAttribute('body', 'data-state');
    Object.assign(out, await page.evaluate(() => {
      const q = (s) => [...document.querySelectorAll(s)];
      const tid = (id) => document.querySelector('[data-testid="' + id + '"]');
      const num = (e, a) => (e ? Number(e.getAttribute(a)) : null);
      const val = (id) => num(tid(id), 'data-value');
      return {
        error: tid('error').hidden ? null : tid('error').textContent,
        period: tid('period').textContent,
        period_from: tid('period').getAttribute('data-from'),
        period_to: tid('period').getAttribute('data-to'),
        policy_version: tid('policy-version').textContent,
        totals: {
          decisions: val('total-decisions'), cross_border: val('total-abroad'),
          allow: val('total-allow'), deidentify: val('total-deidentify'), block: val('total-block'),
          subjects_left_as_pi: val('total-subjects-left'),
        },
        countries: q('[data-testid="country-row"]').map((e) => ({
          country: e.getAttribute('data-country') || null, decisions: num(e, 'data-decisions'),
          allow: num(e, 'data-allow'), deidentify: num(e, 'data-deidentify'), block: num(e, 'data-block'),
          label: e.querySelector('.label').textContent,
        })),
        timeline: q('[data-testid="time-bar"]').map((e) => ({
          key: e.getAttribute('data-key'), decisions: num(e, 'data-decisions'),
          allow: num(e, 'data-allow'), deidentify: num(e, 'data-deidentify'), block: num(e, 'data-block'),
        })),
        categories: q('[data-testid="category-row"]').map((e) => ({
          category: e.getAttribute('data-category'), findings: num(e, 'data-findings'), left: num(e, 'data-left'),
        })),
        reasons: q('[data-testid="reason-row"]').map((e) => ({
          reason: e.getAttribute('data-reason'), block: num(e, 'data-block'), deidentify: num(e, 'data-deidentify'),
        })),
        rules: q('[data-testid="rule-row"]').map((e) => ({
          rule: e.getAttribute('data-rule'), deidentify: num(e, 'data-deidentify'),
          fields: num(e, 'data-fields'), removed: num(e, 'data-removed'),
        })),
        blocked_total: val('blocked-total'),
        blocked: q('[data-testid="blocked-row"]').map((e) => ({
          decision_id: e.getAttribute('data-decision-id'),
          codes: [...e.querySelectorAll('[data-testid="blocked-reason"]')].map((r) => r.getAttribute('data-code')),
          details: [...e.querySelectorAll('[data-testid="blocked-reason"]')].map((r) => {
            const d = r.querySelector('[data-testid="blocked-detail"]');
            return d ? d.textContent : null;
          }),
          clauses: [...e.querySelectorAll('[data-testid="blocked-clause"]')].map((c) => c.getAttribute('data-clause')),
        })),
        volumes: {
          status: tid('volumes-status').getAttribute('data-status'),
          exempt: num(tid('volumes-exempt'), 'data-value'),
          by_device: num(tid('volumes-by-device'), 'data-value'),
          non_sensitive: num(tid('volumes-non-sensitive'), 'data-people'),
          sensitive: num(tid('volumes-sensitive'), 'data-people'),
          recipients: q('[data-testid="volume-recipient"]').map((e) => ({
            recipient: e.getAttribute('data-recipient'), people: num(e, 'data-people'),
            non_sensitive: num(e, 'data-non-sensitive'), sensitive: num(e, 'data-sensitive'),
          })),
        },
        html: document.documentElement.outerHTML,
        text: document.body.innerText,
      };
    }));
    await page.screenshot({ path: shot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write('dashboard.js: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
