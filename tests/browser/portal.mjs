// Drives the portal in the Debian chromium: sign-up from the link, TOTP
// enrolment and sign-in, an HTML mail whose script must not run, an
// attachment download, a reply with an attachment (the test checks it
// reaches the reply relay sink), delete; screenshots at 375 px and 1280 px.
// Env: BASE, SIGNUP (path), SHOTS (dir). Exits non-zero on any failure.
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';

const { BASE, SIGNUP, SHOTS } = process.env;
const PW = 'correct horse battery staple 42';
const totp = (secret, when) => execFileSync('oathtool',
  ['--totp', '-b', ...(when ? ['-N', when] : []), secret]).toString().trim();

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu',
    '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
});
const ctx = await browser.newContext({ ignoreHTTPSErrors: true,
  acceptDownloads: true, viewport: { width: 1280, height: 900 } });
const page = await ctx.newPage();
const shot = async (name) => {
  for (const w of [375, 1280]) {
    await page.setViewportSize({ width: w, height: 800 });
    await page.screenshot({ path: `${SHOTS}/${name}-${w}.png`, fullPage: true });
  }
};

await page.goto(BASE + SIGNUP);
await shot('signup');
await page.getByLabel('New password', { exact: true }).fill(PW);
await page.getByLabel('Repeat the new password').fill(PW);
await page.getByRole('button', { name: 'Save' }).click();
await page.waitForURL(/\/inbox$/);
await shot('inbox');

// TOTP enrolment.
await page.getByRole('link', { name: 'Settings' }).click();
await page.locator('#f-enrol-current').fill(PW);
await page.getByRole('button', { name: 'Set up two-step verification' }).click();
const secret = (await page.locator('#totp-secret').textContent()).trim();
await shot('totp');
await page.getByLabel('Code from your authenticator app').fill(totp(secret));
await page.getByRole('button', { name: 'Verify' }).click();
await page.getByRole('heading', { name: 'Recovery codes' }).waitFor();

// Sign out, sign in again with password and the next step's code.
await page.getByRole('button', { name: 'Sign out' }).click();
await page.getByText('You have been signed out.').waitFor();
await page.goto(BASE + '/login');
await shot('login');
await page.getByLabel('E-mail address').fill('ext@example.org');
await page.getByLabel('Password', { exact: true }).fill(PW);
await page.getByRole('button', { name: 'Sign in' }).click();
await page.waitForURL(/\/login\/totp$/);
await page.getByLabel(/authenticator/).fill(totp(secret, 'now + 30 seconds'));
await page.getByRole('button', { name: 'Verify' }).click();
await page.waitForURL(/\/inbox$/);

// The HTML mail: its script would replace the marker text.
await page.getByRole('link', { name: 'html test' }).click();
const frame = page.frameLocator('iframe.html-body');
await frame.getByText('safe').waitFor();
assert.equal((await frame.locator('body').textContent()).includes('PWNED'), false);
assert.equal(await page.evaluate(() => window.__pwned), undefined);
await shot('message');

// Attachment download.
const [dl] = await Promise.all([page.waitForEvent('download'),
  page.getByRole('link', { name: 'report.txt' }).click()]);
assert.equal(dl.suggestedFilename(), 'report.txt');
const fs = await import('node:fs');
assert.equal(fs.readFileSync(await dl.path(), 'utf8'), 'attachment body\n');

// Reply, with an attachment; then back to the message.
const msgUrl = page.url();
await page.getByRole('link', { name: 'Reply', exact: true }).click();
await page.waitForURL(/\/compose\?reply=\d+$/);
assert.equal(await page.getByLabel(/^To/).inputValue(), 'alice@example.com');
assert.equal(await page.getByLabel('Subject').inputValue(), 'Re: html test');
await page.getByLabel('Message').fill('Reply from the browser.\n\n' +
  await page.getByLabel('Message').inputValue());
await page.getByLabel('Attachments').setInputFiles({ name: 'answer.txt',
  mimeType: 'text/plain', buffer: Buffer.from('answer body\n') });
await shot('reply');
await page.getByRole('button', { name: 'Send reply' }).click();
await page.waitForURL(/\/inbox\?folder=sent&sent=1$/);
await page.getByText('Your reply has been sent.').waitFor();
await page.getByRole('link', { name: 'Re: html test' }).waitFor();
await shot('sent');
await page.goto(msgUrl);

// Delete.
await page.getByRole('button', { name: 'Delete', exact: true }).click();
await page.waitForURL(/\/inbox\?deleted=1$/);
assert.equal(await page.getByRole('link', { name: 'html test' }).count(), 0);
await shot('inbox-after-delete');
await browser.close();
console.log('browser: all steps passed');
