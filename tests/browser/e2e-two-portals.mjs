// Two portals on one PostgreSQL database (tests/e2e/test_split.py, run in
// the Internet namespace): the recipient signs up through portal A, then a
// second browser whose name for the portal points at portal B gets only
// A's session cookie and must open the inbox and the message with it,
// without signing in again. No DNS: the portal's name is mapped to one
// address per browser, and only the portals' shared key is trusted.
// Env: SIGNUP (full URL), PORTAL_A, PORTAL_B, SPKI, PASSWORD, SUBJECT,
// MARKER, SHOTS (dir). Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

const { SIGNUP, PORTAL_A, PORTAL_B, SPKI, PASSWORD, SUBJECT, MARKER,
  SHOTS } = process.env;
const host = new URL(SIGNUP).hostname;

function e2e_launch(ip) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run',
      `--host-resolver-rules=MAP ${host} ${ip}`,
      `--ignore-certificate-errors-spki-list=${SPKI}`],
  });
}

// Portal A: sign up; the inbox lists the message.
const a = await e2e_launch(PORTAL_A);
const actx = await a.newContext({ viewport: { width: 375, height: 800 } });
const apage = await actx.newPage();
await apage.goto(SIGNUP);
await apage.getByLabel('New password', { exact: true }).fill(PASSWORD);
await apage.getByLabel('Repeat the new password').fill(PASSWORD);
await apage.getByRole('button', { name: 'Save' }).click();
await apage.waitForURL(/\/inbox$/);
await apage.getByRole('link', { name: SUBJECT }).waitFor();
const cookies = await actx.cookies();
assert.ok(cookies.length > 0, 'portal A set no cookie');
await a.close();

// Portal B: the same cookie, no sign-in.
const b = await e2e_launch(PORTAL_B);
const bctx = await b.newContext({ viewport: { width: 375, height: 800 } });
await bctx.addCookies(cookies);
const bpage = await bctx.newPage();
await bpage.goto(`https://${host}/inbox`);
assert.match(bpage.url(), /\/inbox$/, `portal B sent us to ${bpage.url()}`);
await bpage.getByRole('link', { name: SUBJECT }).click();
await bpage.waitForURL(/\/message\?id=\d+$/);
let text = await bpage.locator('main').textContent();
if (!text.includes(MARKER) && await bpage.locator('iframe.html-body').count())
  text = await bpage.frameLocator('iframe.html-body').locator('body')
    .textContent();
assert.ok(text.includes(MARKER), `marker ${MARKER} not on portal B's page`);
await bpage.screenshot({ path: `${SHOTS}/e2e-portal-b-375.png`,
  fullPage: true });
const after = await bctx.cookies();
for (const c of cookies)
  assert.ok(after.some((d) => d.name === c.name && d.value === c.value),
    `portal B replaced the cookie ${c.name}`);
await b.close();
console.log(`browser: signed up on portal A, read the message on portal B ` +
  `with the same session cookie`);
