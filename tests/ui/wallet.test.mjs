// Browser tests of the web app in Debian's headless Chromium: the journeys a person takes (create, deposit,
// withdraw, transfer, refused forms, close), with JavaScript on and off, keyboard only, axe-core on every page
// state, and the screenshots in docs/screenshots/. Run with `make ui-test` (after `make deps-ui`).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  PHONE,
  assertAccessible,
  assertNoSidewaysScroll,
  buildBinary,
  openBrowser,
  screenshots,
  startServer,
  submit,
} from './harness.mjs';

let server;

before(async () => {
  server = await startServer(buildBinary());
}, { timeout: 30 * 60_000 });

after(async () => {
  await server?.stop();
});

/** Creates a wallet through the JSON API (for a fuller list in the screenshots). */
async function seed(owner, currency, initialBalance) {
  const response = await fetch(`${server.base}/wallet/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ owner, currency, initial_balance: initialBalance }),
  });
  assert.equal(response.status, 201, await response.text());
}

const balanceOf = async (page) => (await page.locator('#balance').innerText()).replace(/\s+/g, ' ').trim();
const notice = (page) => page.locator('.notice');
/** The text a screen reader gets (including visually hidden words), with whitespace collapsed. */
const text = async (locator) => (await locator.textContent()).replace(/\s+/g, ' ').trim();
const historyRows = (page) => page.locator('.history tbody tr');

async function createWallet(page, owner, currency, initialBalance) {
  await page.goto(`${server.base}/`);
  await page.getByLabel('Owner', { exact: true }).fill(owner);
  await page.getByLabel('Currency').selectOption(currency);
  await page.getByLabel('Initial balance').fill(initialBalance);
  const answer = await submit(page, page.getByRole('button', { name: 'Create wallet' }));
  assert.equal(answer.postStatus, 303, 'a created wallet is answered with a redirect');
  assert.equal(answer.status, 200);
  assert.match(answer.url.pathname, /^\/ui\/wallets\/\d+$/);
  assert.equal(answer.url.searchParams.get('notice'), 'created');
  assert.equal(await notice(page).innerText(), 'Wallet created.');
  return answer.url.pathname;
}

async function moveMoney(page, form, amount) {
  const section = page.locator('section', { has: page.getByRole('heading', { name: form, exact: true }) });
  await section.getByLabel(/^Amount/).fill(amount);
  return submit(page, section.getByRole('button', { name: form, exact: true }));
}

describe('the web app in Chromium with JavaScript', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base);
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
  });

  it('a person creates two wallets, moves money between them, is refused an overdraft and 1.001 EUR, and closes one', async () => {
    // The home page before anything exists.
    const home = await page.goto(`${server.base}/`);
    assert.equal(home.status(), 200);
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Wallets');
    assert.equal(await page.getByRole('link', { name: 'Grafana' }).getAttribute('href'), '/grafana/');
    assert.equal(await page.getByRole('link', { name: 'Prometheus' }).getAttribute('href'), '/prometheus/');
    await assertAccessible(page, 'the empty home page');

    // Two wallets, created through the form, both listed.
    const ada = await createWallet(page, 'Ada Lovelace', 'EUR', '250.00');
    assert.equal(await balanceOf(page), '250.00 EUR');
    const grace = await createWallet(page, 'Grace Hopper', 'EUR', '');
    assert.equal(await balanceOf(page), '0.00 EUR');
    await seed('Katherine Johnson', 'USD', '1200.00');
    await seed('Hiroshi Tanaka', 'JPY', '150000');
    await seed('Fatima Al-Sabah', 'KWD', '845.250');

    await page.getByRole('link', { name: 'All wallets' }).click();
    const rows = page.locator('.wallets tbody tr');
    const adaRow = rows.filter({ hasText: 'Ada Lovelace' });
    const graceRow = rows.filter({ hasText: 'Grace Hopper' });
    assert.equal(await adaRow.count(), 1);
    assert.equal(await graceRow.count(), 1);
    assert.match(await adaRow.innerText(), /250\.00\s+EUR/);
    assert.match(await graceRow.innerText(), /0\.00\s+EUR/);
    assert.match(await rows.filter({ hasText: 'Hiroshi Tanaka' }).innerText(), /150,000\s+JPY/);
    await screenshots(page, 'home');

    // Open Ada's wallet from the list; deposit, withdraw, transfer to Grace.
    await adaRow.getByRole('link', { name: 'Ada Lovelace' }).click();
    assert.equal(new URL(page.url()).pathname, ada);

    let answer = await moveMoney(page, 'Deposit', '100.00');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await notice(page).innerText(), 'Deposit recorded.');
    assert.equal(await balanceOf(page), '350.00 EUR');

    answer = await moveMoney(page, 'Withdraw', '40.50');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await notice(page).innerText(), 'Withdrawal recorded.');
    assert.equal(await balanceOf(page), '309.50 EUR');

    const transfer = page.locator('section', { has: page.getByRole('heading', { name: 'Transfer' }) });
    await transfer.getByLabel('To wallet').selectOption({ label: `#${grace.split('/').pop()} — Grace Hopper` });
    await transfer.getByLabel(/^Amount/).fill('75.25');
    answer = await submit(page, transfer.getByRole('button', { name: 'Transfer' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await notice(page).innerText(), 'Transfer completed.');
    assert.equal(await balanceOf(page), '234.25 EUR');

    // The history, newest first, with the running balance.
    const history = await historyRows(page).allInnerTexts();
    assert.equal(history.length, 4);
    assert.match(history[0], /Transfer to #\d+[\s\S]*−75\.25\s+234\.25/);
    assert.match(history[1], /Withdrawal[\s\S]*−40\.50\s+309\.50/);
    assert.match(history[2], /Deposit[\s\S]*\+100\.00\s+350\.00/);
    assert.match(history[3], /Opening balance[\s\S]*\+250\.00\s+250\.00/);
    await screenshots(page, 'wallet');

    // An overdraft: 409, the message beside the amount, the typed value kept, nothing changed.
    answer = await moveMoney(page, 'Withdraw', '1000.00');
    assert.equal(answer.postStatus, 409);
    const withdrawAmount = page.locator('#withdraw-amount');
    assert.equal(await withdrawAmount.inputValue(), '1000.00');
    assert.equal(await withdrawAmount.getAttribute('aria-invalid'), 'true');
    assert.equal(
      await text(page.locator('#withdraw-amount-error')),
      'Error: Insufficient funds: this wallet holds 234.25 EUR.',
    );
    assert.match(await withdrawAmount.getAttribute('aria-describedby'), /withdraw-amount-error/);
    assert.equal(await balanceOf(page), '234.25 EUR');
    assert.match(await page.title(), /^Error: /);

    // Too many decimals for EUR: 422, the same treatment, and the focus on the refused field.
    answer = await moveMoney(page, 'Deposit', '1.001');
    assert.equal(answer.postStatus, 422);
    const depositAmount = page.locator('#deposit-amount');
    assert.equal(await depositAmount.inputValue(), '1.001');
    assert.equal(await text(page.locator('#deposit-amount-error')), 'Error: EUR allows at most 2 decimal places.');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'deposit-amount');
    assert.equal(await balanceOf(page), '234.25 EUR');
    await screenshots(page, 'rejected-form');

    // Grace's side of the transfer.
    await page.goto(`${server.base}${grace}`);
    assert.equal(await balanceOf(page), '75.25 EUR');
    const graceHistory = await historyRows(page).allInnerTexts();
    assert.equal(graceHistory.length, 2);
    assert.match(graceHistory[0], /Transfer from #\d+[\s\S]*\+75\.25\s+75\.25/);

    // Closing: the box must be ticked (the browser enforces `required`), then the wallet leaves the list and
    // its page answers 404.
    await page.getByLabel(/^Yes, close wallet/).check();
    answer = await submit(page, page.getByRole('button', { name: 'Close wallet' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(answer.url.pathname, '/');
    assert.match(await notice(page).innerText(), /^Wallet closed\./);
    assert.equal(await page.locator('.wallets tbody tr').filter({ hasText: 'Grace Hopper' }).count(), 0);
    assert.equal(await page.locator('.wallets tbody tr').filter({ hasText: 'Ada Lovelace' }).count(), 1);
    const gone = await page.goto(`${server.base}${grace}`);
    assert.equal(gone.status(), 404);
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Wallet not found');
    await assertAccessible(page, 'the 404 page');

    assert.deepEqual(browser.foreign, [], 'nothing is loaded from outside the app');
  });

  it('a keyboard alone reaches and submits a form, and the focus is always visible', async () => {
    const wallet = await createWallet(page, 'Keyboard User', 'EUR', '10.00');
    await page.goto(`${server.base}${wallet}`);

    await page.keyboard.press('Tab');
    const first = await page.evaluate(() => document.activeElement?.textContent?.trim());
    assert.equal(first, 'Skip to content', 'the first stop is the skip link');
    let focused;
    for (let presses = 0; presses < 30; presses += 1) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => {
        const element = document.activeElement;
        const style = element ? getComputedStyle(element) : null;
        return { id: element?.id, outline: style ? `${style.outlineStyle} ${style.outlineWidth}` : '' };
      });
      assert.notEqual(focused.outline.split(' ')[0], 'none', `focus on #${focused.id} has no visible outline`);
      if (focused.id === 'deposit-amount') break;
    }
    assert.equal(focused.id, 'deposit-amount', 'Tab reaches the deposit amount');
    await page.keyboard.type('2.50');
    const shown = page.waitForURL(/notice=deposited/);
    await page.keyboard.press('Enter');
    await shown;
    assert.equal(await balanceOf(page), '12.50 EUR');
  });

  it('pages fit a 375 px screen without sideways scrolling, even with the largest possible balance', async () => {
    const wallet = await createWallet(page, 'A rather long owner name that has to wrap somewhere', 'KWD', '9223372036854775.807');
    await page.setViewportSize(PHONE);
    try {
      for (const path of ['/', wallet]) {
        await page.goto(`${server.base}${path}`);
        await assertNoSidewaysScroll(page, path);
      }
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
  });
});

describe('the web app in Chromium with JavaScript disabled', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base, { javaScriptEnabled: false, viewport: PHONE });
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
  });

  it('really has JavaScript off', async () => {
    await page.setContent('<p id="probe">off</p><script>document.getElementById("probe").textContent = "on"</script>');
    assert.equal(await page.locator('#probe').textContent(), 'off');
  });

  it('creates, deposits, is refused an overdraft, transfers and closes with forms alone', async () => {
    const from = await createWallet(page, 'No Script', 'EUR', '20.00');
    const to = await createWallet(page, 'Plain Forms', 'EUR', '');
    assert.equal(await page.locator('script').count(), 0, 'the pages carry no script at all');

    await page.goto(`${server.base}${from}`);
    let answer = await moveMoney(page, 'Deposit', '5');
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await balanceOf(page), '25.00 EUR');

    answer = await moveMoney(page, 'Withdraw', '100');
    assert.equal(answer.postStatus, 409);
    assert.equal(await page.locator('#withdraw-amount').inputValue(), '100');
    assert.match(await page.locator('#withdraw-amount-error').innerText(), /Insufficient funds/);

    const transfer = page.locator('section', { has: page.getByRole('heading', { name: 'Transfer' }) });
    await transfer.getByLabel('To wallet').selectOption({ label: `#${to.split('/').pop()} — Plain Forms` });
    await transfer.getByLabel(/^Amount/).fill('10');
    answer = await submit(page, transfer.getByRole('button', { name: 'Transfer' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(await balanceOf(page), '15.00 EUR');

    await page.goto(`${server.base}${to}`);
    assert.equal(await balanceOf(page), '10.00 EUR');
    await page.getByLabel(/^Yes, close wallet/).check();
    answer = await submit(page, page.getByRole('button', { name: 'Close wallet' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(answer.url.pathname, '/');
    assert.equal(await page.locator('.wallets tbody tr').filter({ hasText: 'Plain Forms' }).count(), 0);
    assert.equal((await page.goto(`${server.base}${to}`)).status(), 404);

    assert.deepEqual(browser.foreign, [], 'nothing is loaded from outside the app');
  });
});
