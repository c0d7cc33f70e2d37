// Browser tests of the wallet page's holds (issue 15) in Debian's headless Chromium: place a hold and see the
// available amount drop, capture part of it into another wallet, void another, and the refused forms, with
// axe-core on each state and the holds screenshots in docs/screenshots/. Run with `make ui-test`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  assertAccessible,
  buildBinary,
  createKey,
  openBrowser,
  screenshots,
  signIn,
  startServer,
  submit,
} from './harness.mjs';

let server;
/** The journeys are a `write` user's: placing, capturing and voiding need that role. */
let writeKey;

before(async () => {
  server = await startServer(buildBinary());
  writeKey = await createKey(server.base, 'write');
}, { timeout: 30 * 60_000 });

after(async () => {
  await server?.stop();
});

/** The text a screen reader gets (including visually hidden words), with whitespace collapsed. */
const text = async (locator) => (await locator.textContent()).replace(/\s+/g, ' ').trim();
const shown = async (page, id) => (await page.locator(`#${id}`).innerText()).replace(/\s+/g, ' ').trim();
const notice = (page) => page.locator('.notice');

/** Balance, held and available as the wallet page shows them. */
async function money(page) {
  return { balance: await shown(page, 'balance'), held: await shown(page, 'held'), available: await shown(page, 'available') };
}

/**
 * Opens the app on a wallet page: the one place a journey enters the app, so that a sign-in step, when the web
 * app has one, is added here alone.
 */
async function openWallet(page, path) {
  const response = await page.goto(`${server.base}${path}`);
  assert.equal(response.status(), 200);
}

/** Creates a wallet through the home page's form; returns its page's path. */
async function createWallet(page, owner, currency, initialBalance) {
  await page.goto(`${server.base}/`);
  await page.getByLabel('Owner', { exact: true }).fill(owner);
  await page.getByLabel('Currency').selectOption(currency);
  await page.getByLabel('Initial balance').fill(initialBalance);
  const answer = await submit(page, page.getByRole('button', { name: 'Create wallet' }));
  assert.equal(answer.postStatus, 303, 'a created wallet is answered with a redirect');
  return answer.url.pathname;
}

async function placeHold(page, amount, hours = '') {
  const form = page.locator('.holds__place');
  await form.getByLabel(/^Amount/).fill(amount);
  await form.getByLabel(/^Expires in/).fill(hours);
  return submit(page, page.getByRole('button', { name: 'Place hold' }));
}

/** The pending hold of this amount (as shown, like "30.00 EUR"). */
const pendingHold = (page, amount) => page.locator('.hold').filter({ hasText: amount });

describe('holds on the wallet page in Chromium', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base);
    page = browser.page;
    await signIn(page, server.base, writeKey);
  });

  after(async () => {
    await browser?.close();
  });

  it('a person places two holds, sees available drop, captures part of one into another wallet and voids the other', async () => {
    const ada = await createWallet(page, 'Ada Holds', 'EUR', '100.00');
    const grace = await createWallet(page, 'Grace Receives', 'EUR', '');
    const graceId = grace.split('/').pop();

    await openWallet(page, ada);
    assert.deepEqual(await money(page), { balance: '100.00 EUR', held: '0.00 EUR', available: '100.00 EUR' });
    assert.equal(await page.locator('.holds .empty').innerText(), 'No pending holds.');

    // Place: the balance stays, held rises, available drops.
    let answer = await placeHold(page, '30.00');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(answer.url.searchParams.get('notice'), 'held');
    assert.equal(await notice(page).innerText(), 'Hold placed.');
    assert.deepEqual(await money(page), { balance: '100.00 EUR', held: '30.00 EUR', available: '70.00 EUR' });

    answer = await placeHold(page, '20.00', '2');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.deepEqual(await money(page), { balance: '100.00 EUR', held: '50.00 EUR', available: '50.00 EUR' });
    assert.equal(await page.locator('.hold').count(), 2);
    await screenshots(page, 'holds');

    // A hold bigger than what is available (though not than the balance): 409, the message beside the amount,
    // the typed value kept and focused, nothing changed.
    answer = await placeHold(page, '60.00');
    assert.equal(answer.postStatus, 409);
    const holdAmount = page.locator('#hold-amount');
    assert.equal(await holdAmount.inputValue(), '60.00');
    assert.equal(await holdAmount.getAttribute('aria-invalid'), 'true');
    assert.equal(
      await text(page.locator('#hold-amount-error')),
      'Error: Insufficient funds: 50.00 EUR of this wallet is available.',
    );
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'hold-amount');
    assert.match(await page.title(), /^Error: /);
    assert.deepEqual(await money(page), { balance: '100.00 EUR', held: '50.00 EUR', available: '50.00 EUR' });
    await assertAccessible(page, 'a refused hold');

    // Capture part of the 30.00 hold into Grace's wallet: 12.50 moves, the other 17.50 is released.
    const first = pendingHold(page, '30.00 EUR');
    await first.getByLabel(/^Capture amount/).fill('12.50');
    await first.getByLabel(/^Into wallet number/).fill(graceId);
    answer = await submit(page, first.getByRole('button', { name: /^Capture hold #\d+$/ }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await notice(page).innerText(), 'Hold captured.');
    assert.deepEqual(await money(page), { balance: '87.50 EUR', held: '20.00 EUR', available: '67.50 EUR' });
    assert.equal(await page.locator('.hold').count(), 1);
    const latest = await page.locator('.history tbody tr').first().innerText();
    assert.match(latest, new RegExp(`Transfer to #${graceId}[\\s\\S]*−12\\.50\\s+87\\.50`));

    // Capturing more than the other hold reserves: 422 beside that hold's amount, nothing changed.
    const second = pendingHold(page, '20.00 EUR');
    await second.getByLabel(/^Capture amount/).fill('25.00');
    answer = await submit(page, second.getByRole('button', { name: /^Capture hold #\d+$/ }));
    assert.equal(answer.postStatus, 422);
    const refused = pendingHold(page, '20.00 EUR');
    assert.match(await text(refused.locator('.field-error')), /^Error: Hold #\d+ reserves 20\.00 EUR: capture at most that\.$/);
    assert.equal(await refused.getByLabel(/^Capture amount/).inputValue(), '25.00');
    assert.deepEqual(await money(page), { balance: '87.50 EUR', held: '20.00 EUR', available: '67.50 EUR' });
    await screenshots(page, 'holds-rejected-capture');

    // Void the other: everything is available again.
    answer = await submit(page, refused.getByRole('button', { name: /^Void hold #\d+$/ }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await notice(page).innerText(), 'Hold voided.');
    assert.deepEqual(await money(page), { balance: '87.50 EUR', held: '0.00 EUR', available: '87.50 EUR' });
    assert.equal(await page.locator('.holds .empty').innerText(), 'No pending holds.');
    await assertAccessible(page, 'the wallet page after a void');

    // Grace's side of the capture.
    await openWallet(page, grace);
    assert.deepEqual(await money(page), { balance: '12.50 EUR', held: '0.00 EUR', available: '12.50 EUR' });
    assert.match(await page.locator('.history tbody tr').first().innerText(), /Transfer from #\d+[\s\S]*\+12\.50\s+12\.50/);

    assert.deepEqual(browser.foreign, [], 'nothing is loaded from outside the app');
  });
});

describe('holds in Chromium with JavaScript disabled', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base, { javaScriptEnabled: false });
    page = browser.page;
    await signIn(page, server.base, writeKey);
  });

  after(async () => {
    await browser?.close();
  });

  it('places, captures as a withdrawal and voids with forms alone', async () => {
    const wallet = await createWallet(page, 'No Script Holds', 'JPY', '5000');
    await openWallet(page, wallet);
    let answer = await placeHold(page, '1500');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    answer = await placeHold(page, '500', '1');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.deepEqual(await money(page), { balance: '5,000 JPY', held: '2,000 JPY', available: '3,000 JPY' });

    // An empty capture amount takes the whole hold, as a withdrawal.
    answer = await submit(page, pendingHold(page, '1,500 JPY').getByRole('button', { name: /^Capture hold/ }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.deepEqual(await money(page), { balance: '3,500 JPY', held: '500 JPY', available: '3,000 JPY' });
    assert.match(await page.locator('.history tbody tr').first().innerText(), /Withdrawal[\s\S]*−1,500\s+3,500/);

    answer = await submit(page, pendingHold(page, '500 JPY').getByRole('button', { name: /^Void hold/ }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.deepEqual(await money(page), { balance: '3,500 JPY', held: '0 JPY', available: '3,500 JPY' });
    assert.equal(await page.locator('script').count(), 0, 'the pages carry no script at all');
  });
});
