// The recipient's side of the e2e test (tests/e2e/test_split.py), run in
// the Internet namespace: the Debian chromium follows the sign-up link from
// the notification, chooses a password, opens the message from the inbox
// and checks that its body shows. No DNS there: the portal's name is mapped
// to its address, and only the portal's own key is trusted (its SPKI hash),
// so a wrong certificate still fails.
// Env: SIGNUP (full URL), PORTAL_IP, SPKI (base64 SHA-256 of the key),
// PASSWORD, SUBJECT, MARKER, SHOTS (dir). Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const { SIGNUP, PORTAL_IP, SPKI, PASSWORD, SUBJECT, MARKER, SHOTS } =
  process.env;
const host = new URL(SIGNUP).hostname;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run',
    `--host-resolver-rules=MAP ${host} ${PORTAL_IP}`,
    `--ignore-certificate-errors-spki-list=${SPKI}`],
});
const ctx = await browser.newContext({ viewport: { width: 375, height: 800 } });
const page = await ctx.newPage();

await page.goto(SIGNUP);
await page.getByLabel('New password', { exact: true }).fill(PASSWORD);
await page.getByLabel('Repeat the new password').fill(PASSWORD);
await page.getByRole('button', { name: 'Save' }).click();
await page.waitForURL(/\/inbox$/);
await page.screenshot({ path: `${SHOTS}/e2e-inbox-375.png`, fullPage: true });

await page.getByRole('link', { name: SUBJECT }).click();
await page.waitForURL(/\/message\?id=\d+$/);
// A text body is shown in the page; an HTML body in its sandboxed frame.
let text = await page.locator('main').textContent();
if (!text.includes(MARKER) && await page.locator('iframe.html-body').count())
  text = await page.frameLocator('iframe.html-body').locator('body')
    .textContent();
assert.ok(text.includes(MARKER), `marker ${MARKER} not on the page`);
await page.screenshot({ path: `${SHOTS}/e2e-message-375.png`, fullPage: true });
await browser.close();
console.log(`browser: signed up on ${host} and read the message`);
