// The web console in a real browser (headless Chromium, Debian's package, driven through
// playwright-core), against a local pipeline started by scripts/browser-test. It signs in with
// the keyboard, creates a webhook against scripts/webhook-receiver, uploads files (accepted,
// refused type, duplicate, hostile names), watches their statuses settle, opens a detail,
// deletes one, sees the webhook's deliveries and replays one, and draws the numbers. Every page
// is screenshotted into $SCREENSHOTS. No script planted in a name may run: the page records
// every CSP violation and alert, and the test asserts there were none.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const URL_ = process.env.INTAKE_URL;
const TOKEN = process.env.INTAKE_TOKEN;
const HOOK = process.env.WEBHOOK_URL;
const RECEIVED = process.env.WEBHOOK_LOG;
const SHOTS = process.env.SCREENSHOTS || 'screenshots';
const SETTLE = 90_000; // the longest a status may take to settle on a loaded machine

let browser, page;
const alerts = [];

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Before any page script: record CSP violations (an inline handler or script that tried to run).
  await context.addInitScript(() => {
    window.__violations = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page = await context.newPage();
  // File choosers are intercepted from the start: playwright turns interception on when a
  // listener is added, without waiting for the browser to confirm it, so a chooser opened right
  // after `waitForEvent('filechooser')` could go to the (headless, invisible) native dialog.
  page.on('filechooser', () => {});
  // What went wrong in the page is printed with the test's output.
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`[page ${m.type()}] ${m.text()}`); });
  page.on('requestfailed', (r) => console.error(`[request failed] ${r.method()} ${r.url().split('?')[0]}: ${r.failure()?.errorText}`));
  page.on('pageerror', (e) => console.error(`[page error] ${e.message}`));
  page.on('dialog', async (d) => {
    if (d.type() === 'confirm') return d.accept();
    alerts.push(d.message());
    return d.dismiss();
  });
});

after(async () => { await browser?.close(); });

const shot = (name) => page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
const heading = (name) => page.getByRole('heading', { level: 1, name, exact: true }).waitFor();

async function noScriptRan() {
  assert.deepEqual(alerts, [], 'no alert from a planted script');
  assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violation');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no planted script ran');
}

// Over the console's one-request limit (512 KiB) and the API's part size (8 MiB): two parts,
// each PUT by the browser straight to the bucket (CORS) with its signed SHA-256.
const CSV = Buffer.from(Array.from({ length: 420_000 }, (_, i) => `${i},${(i * 7919) % 100003},row ${i}\n`).join(''));
const PDF = Buffer.from('%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n' + 'x'.repeat(2000));
const HOSTILE = '<img src=x onerror="window.__pwned=1;alert(1)">.pdf';
const RTL = 'invoice\u202Efdp.exe.pdf';
const LONG = 'n'.repeat(4096) + '.pdf';

test('sign in with the keyboard alone', async () => {
  await page.goto(URL_ + '/');
  await heading('Sign in');
  await shot('01-sign-in');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'token', 'the token field has the focus');
  await page.keyboard.type('itk_not_a_token');
  await page.keyboard.press('Enter');
  await page.locator('#notice', { hasText: 'refused' }).waitFor();
  await page.locator('#token').fill('');
  await page.locator('#token').focus();
  await page.keyboard.type(TOKEN);
  await page.keyboard.press('Enter');
  await heading('Documents');
  assert.match(await page.locator('#who').textContent(), /^owner: /);
  assert.equal(await page.evaluate(() => document.cookie), '', 'no cookie');
  assert.ok(!page.url().includes(TOKEN), 'the token is not in the URL');
  // Tab from the page's top reaches the navigation; Enter follows a link.
  await page.locator('.skip').focus();
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement.textContent)) === 'Webhooks') break;
  }
  await page.keyboard.press('Enter');
  await heading('Webhooks');
});

test('create a webhook: its secret is shown once', async () => {
  await page.locator('#hook-url').fill(HOOK);
  await page.locator('#hook-description').fill('<b>bold?</b> receiver');
  await page.getByRole('button', { name: 'Create' }).click();
  const secret = await page.locator('#secret-value').textContent();
  assert.match(secret, /^whsec_/);
  await page.locator('#webhooks tr', { hasText: '<b>bold?</b> receiver' }).waitFor();
  assert.equal(await page.locator('#webhooks b').count(), 0, 'a description is text, not markup');
  await shot('02-webhooks');
});

test('upload files: accepted, refused, duplicate and hostile names, each settles', async () => {
  await page.locator('nav a', { hasText: 'Upload' }).click();
  await heading('Upload');
  await page.locator('#upload-tags').fill('browser, case-42');
  // The keyboard path: Tab from the tags field reaches "Choose files…", Enter opens the chooser.
  await page.locator('#upload-tags').focus();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'choose');
  const [chooser] = await Promise.all([page.waitForEvent('filechooser'), page.keyboard.press('Enter')]);
  await chooser.setFiles([
    { name: 'contract.pdf', mimeType: 'application/pdf', buffer: PDF },
    { name: 'tool.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ\x90\x00' + 'x'.repeat(100)) },
    { name: 'contract-copy.pdf', mimeType: 'application/pdf', buffer: PDF },
    { name: HOSTILE, mimeType: 'application/pdf', buffer: Buffer.concat([PDF, Buffer.from('1')]) },
    { name: RTL, mimeType: 'application/pdf', buffer: Buffer.concat([PDF, Buffer.from('2')]) },
    { name: LONG, mimeType: 'application/pdf', buffer: Buffer.concat([PDF, Buffer.from('3')]) },
    { name: 'ledger.csv', mimeType: 'text/csv', buffer: CSV },
  ]);
  const item = (name) => page.locator(`#uploads li[data-file="${name.replace(/["\\]/g, '\\$&')}"]`);
  const settled = '[data-status="accepted"], [data-status="duplicate"], [data-status="rejected"], [data-status="error"]';
  for (const name of ['contract.pdf', 'tool.exe', 'contract-copy.pdf', HOSTILE, RTL, LONG, 'ledger.csv']) {
    await item(name).and(page.locator(settled)).waitFor({ timeout: SETTLE });
  }
  const status = async (name) => item(name).getAttribute('data-status');
  const first = await status('contract.pdf');
  const copy = await status('contract-copy.pdf');
  assert.deepEqual([first, copy].sort(), ['accepted', 'duplicate'], 'one of the same bytes is the duplicate of the other');
  assert.equal(await status('tool.exe'), 'error');
  assert.match(await item('tool.exe').textContent(), /unsupported_media_type/);
  for (const name of [HOSTILE, RTL, LONG]) assert.equal(await status(name), 'accepted', name);
  assert.ok(CSV.length > 8 << 20, `the large file is ${CSV.length} bytes`);
  assert.equal(await status('ledger.csv'), 'accepted', await item('ledger.csv').textContent());
  assert.equal(await item('ledger.csv').getAttribute('data-parts'), '2', 'sent in two parts');
  assert.equal(await page.locator('#uploads img').count(), 0, 'a name is text, not markup');
  assert.ok((await item(HOSTILE).textContent()).includes('<img src=x onerror='), 'the name as the sender wrote it, as text');
  assert.ok((await item(RTL).textContent()).includes('\u27e8U+202E\u27e9'), 'the right-to-left override is shown, not obeyed');
  await shot('03-upload');
  await noScriptRan();
});

test('the list shows live statuses, filters, and hostile names as text', async () => {
  await page.locator('nav a', { hasText: 'Documents' }).click();
  await heading('Documents');
  await page.locator('#documents tr', { hasText: 'contract.pdf' }).waitFor();
  const text = await page.locator('#documents').textContent();
  // The API made the name safe for keys and headers (markup characters become "_"); what is
  // left is shown as text.
  assert.ok(text.includes('img src=x onerror='), 'the hostile name is shown as text');
  assert.equal(await page.locator('#documents img').count(), 0);
  // The name sanitizer dropped the right-to-left override; the long name is clipped on screen.
  assert.ok(!text.includes('\u202E'));
  await shot('04-documents');
  await page.locator('#filter-status').selectOption('duplicate');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/status=duplicate/);
  // The table drawn for the filter: every row a duplicate, and at least one.
  await page.waitForFunction(() => {
    const s = [...document.querySelectorAll('#documents [data-status]')].map((e) => e.dataset.status);
    return s.length >= 1 && s.every((x) => x === 'duplicate');
  });
  await page.locator('#filter-status').selectOption('');
  await page.locator('#filter-tag').fill('case-42');
  await page.getByRole('button', { name: 'Filter' }).click();
  await page.waitForURL(/tag=case-42/);
  await page.waitForFunction(() => document.querySelectorAll('#documents tr[data-id]').length >= 6);
  await noScriptRan();
});

test('a detail: facts, rename and retag, delete', async () => {
  await page.locator('#documents a', { hasText: 'contract.pdf' }).first().click();
  await heading('Document');
  const facts = await page.locator('#facts').textContent();
  assert.match(facts, /[0-9a-f]{64}/, 'the SHA-256');
  assert.match(facts, /application\/pdf/);
  // Its history, from the API: received first, and the status it settled in last.
  const status = await page.locator('#facts [data-status]').getAttribute('data-status');
  const events = await page.locator('#history li').evaluateAll((li) => li.map((e) => e.dataset.event));
  assert.equal(events[0], 'received', events.join(' → '));
  assert.equal(events.at(-1), status, events.join(' → '));
  await shot('05-detail');
  await page.locator('#rename').fill('contract-signed.pdf');
  await page.locator('#retag').fill('browser, signed');
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('#facts', { hasText: 'contract-signed.pdf' }).waitFor();
  assert.match(await page.locator('#facts').textContent(), /signed/);
  await page.locator('#delete').click(); // the confirm is accepted
  await heading('Documents');
  await page.locator('#notice', { hasText: 'Deleted' }).waitFor();
});

test('the webhook shows its deliveries, and one replays', async () => {
  await page.locator('nav a', { hasText: 'Webhooks' }).click();
  await heading('Webhooks');
  await page.locator('#webhooks a').first().click();
  await heading('Webhook');
  // Documents accepted after the webhook was made: deliveries arrive (the page refreshes itself).
  await page.locator('#deliveries [data-status="delivered"]').first().waitFor({ timeout: SETTLE });
  await shot('06-webhook');
  const eventId = await page.locator('#deliveries tr[data-event]', { has: page.locator('[data-status="delivered"]') })
    .first().getAttribute('data-event');
  // That row by its id: the table is redrawn as deliveries arrive.
  await page.locator(`#deliveries tr[data-event="${eventId}"]`).getByRole('button', { name: 'Replay' }).click();
  await page.locator('#notice', { hasText: 'queued again' }).waitFor();
  // The receiver gets the same webhook-id a second time.
  const deadline = Date.now() + SETTLE;
  for (;;) {
    const log = readFileSync(RECEIVED, 'utf8');
    if (log.split('\n').some((l) => l.includes(`webhook-id=${eventId}`) && l.includes('again'))) break;
    assert.ok(Date.now() < deadline, `the replayed event ${eventId} did not reach the receiver:\n${log}`);
    await new Promise((r) => setTimeout(r, 250));
  }
});

test('numbers are drawn, not only tabled', async () => {
  await page.locator('nav a', { hasText: 'Numbers' }).click();
  await heading('Numbers');
  await page.locator('#chart-documents').waitFor();
  const widths = await page.locator('#chart-documents rect').evaluateAll((rs) => rs.map((r) => Number(r.getAttribute('width'))));
  assert.ok(widths.some((w) => w > 0), `bars are drawn: ${widths}`);
  assert.ok(await page.locator('#chart-days rect').count() >= 1, 'the per-day chart has bars');
  const label = await page.locator('#chart-documents').getAttribute('aria-label');
  assert.match(label, /accepted [1-9]/);
  await shot('07-numbers');
  await noScriptRan();
});

test('signing out forgets the token', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await heading('Sign in');
  assert.equal(await page.evaluate(() => sessionStorage.getItem('intake.token')), null);
});
