// The PDF OTP pages in the Debian chromium: sign-up from the link in the
// PDF mail, the password page (large monospace password, one click
// selects all of it, the copy button puts it on the clipboard), the list
// of PDF passwords; screenshots at 375 px and 1280 px.
// Env: BASE, SIGNUP (path), PDF (path /pdf/<token>), SHOTS (dir).
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const { BASE, SIGNUP, PDF, SHOTS } = process.env;
const PW = 'correct horse battery staple 42';

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const ctx = await browser.newContext({ ignoreHTTPSErrors: true,
  viewport: { width: 1280, height: 900 } });
await ctx.grantPermissions(['clipboard-read', 'clipboard-write'],
  { origin: BASE });
const page = await ctx.newPage();
const errors = [];
// Script errors and failed loads, except the browser's own favicon probe.
page.on('console', (m) => {
  if (m.type() === 'error' && !/favicon/.test(m.location().url))
    errors.push(m.text() + ' ' + m.location().url);
});
const shot = async (name) => {
  for (const w of [375, 1280]) {
    await page.setViewportSize({ width: w, height: 800 });
    await page.screenshot({ path: `${SHOTS}/${name}-${w}.png`, fullPage: true });
    // Nothing wider than the screen.
    const sw = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(sw <= w, `${name} at ${w}px scrolls sideways (${sw})`);
  }
};

await page.goto(BASE + SIGNUP);
await page.getByLabel('New password', { exact: true }).fill(PW);
await page.getByLabel('Repeat the new password').fill(PW);
await page.getByRole('button', { name: 'Save' }).click();
await page.waitForURL(/\/inbox$/);

await page.getByRole('link', { name: 'PDF passwords' }).click();
await page.waitForURL(/\/pdf$/);
await shot('pdf-list');
await page.locator('.pdflist a').first().click();
await page.waitForURL(new RegExp(PDF + '$'));
const pw = await page.locator('#pw').getAttribute('data-pw');
assert.match(pw, /^[a-z0-9]{20}$/);
// Monospace and large.
const style = await page.locator('#pw').evaluate((e) => {
  const s = getComputedStyle(e);
  return { font: s.fontFamily, size: parseFloat(s.fontSize), sel: s.userSelect };
});
assert.match(style.font, /mono/i);
assert.ok(style.size >= 24, `password font ${style.size}px`);
// One click selects the whole password, without the group spaces.
await page.locator('#pw').click();
const sel = await page.evaluate(() => window.getSelection().toString());
assert.equal(sel.replace(/\s/g, ''), pw);
// The copy button (shown where scripts run) copies it.
await page.getByRole('button', { name: 'Copy password' }).click();
await page.getByRole('button', { name: 'Copied' }).waitFor();
assert.equal(await page.evaluate(() => navigator.clipboard.readText()), pw);
await shot('pdf-password');
assert.deepEqual(errors, []);

// Without JavaScript the password is there and selectable; no button.
const nojs = await browser.newContext({ ignoreHTTPSErrors: true,
  javaScriptEnabled: false, storageState: await ctx.storageState() });
const p2 = await nojs.newPage();
await p2.goto(BASE + PDF);
assert.equal(await p2.locator('#pw').getAttribute('data-pw'), pw);
assert.equal(await p2.getByRole('button', { name: 'Copy password' }).count(), 0);
await p2.locator('#pw').click();
assert.equal((await p2.evaluate(() => window.getSelection().toString()))
  .replace(/\s/g, ''), pw);
await nojs.close();

await browser.close();
console.log('all steps passed');
