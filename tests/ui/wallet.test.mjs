// Browser tests of the web app in Debian's headless Chromium: signing in (a `write` key for the journeys, `admin`
// to close, a `read` key that gets no forms, no session at all), the journeys a person takes (create, deposit,
// withdraw, transfer, refused forms, close), a forged cross-site post, with JavaScript on and off, keyboard only,
// axe-core on every page state, and the screenshots in docs/screenshots/. Run with `make ui-test` (after
// `make deps-ui`).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import {
  ADMIN_KEY,
  PHONE,
  assertAccessible,
  assertNoSidewaysScroll,
  buildBinary,
  createKey,
  openBrowser,
  screenshots,
  signIn,
  signOut,
  startServer,
  submit,
} from './harness.mjs';

let server;
let writeKey;
let readKey;

before(async () => {
  server = await startServer(buildBinary());
  writeKey = await createKey(server.base, 'write');
  readKey = await createKey(server.base, 'read');
}, { timeout: 30 * 60_000 });

after(async () => {
  await server?.stop();
});

/** Creates a wallet through the JSON API (for a fuller list in the screenshots) and returns its id. */
async function seed(owner, currency, initialBalance) {
  const response = await fetch(`${server.base}/wallet/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ owner, currency, initial_balance: initialBalance }),
  });
  const body = await response.text();
  assert.equal(response.status, 201, body);
  return JSON.parse(body).id;
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

  it('without a session every page leads to the sign-in page, which refuses a wrong key and accepts a write key', async () => {
    let shown = await page.goto(`${server.base}/`);
    assert.equal(shown.status(), 200);
    assert.equal(new URL(page.url()).pathname, '/ui/sign-in');
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Sign in');
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0);
    assert.equal(await page.getByLabel('API key').getAttribute('type'), 'password');
    await screenshots(page, 'sign-in');

    // A page asked for without a session is where the browser goes back to once signed in.
    await page.goto(`${server.base}/ui/wallets/1`);
    const asked = new URL(page.url());
    assert.equal(asked.pathname, '/ui/sign-in');
    assert.equal(asked.searchParams.get('next'), '/ui/wallets/1');

    await page.getByLabel('API key').fill('rw_not_a_key_of_this_server_0123456789abcdef');
    let answer = await submit(page, page.getByRole('button', { name: 'Sign in' }));
    assert.equal(answer.postStatus, 401);
    assert.equal(await text(page.locator('#api_key-error')), 'Error: This API key is unknown or has been revoked.');
    assert.equal(await page.getByLabel('API key').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.getByLabel('API key').inputValue(), '', 'the key is not shown back');
    assert.match(await page.title(), /^Error: Sign in/);
    await assertAccessible(page, 'the refused sign-in');

    await page.getByLabel('API key').fill(writeKey);
    answer = await submit(page, page.getByRole('button', { name: 'Sign in' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 404], 'back to the page asked for (no wallet yet)');
    assert.equal(answer.url.pathname, '/ui/wallets/1');
    assert.match(await page.locator('.account').innerText(), /Signed in with key \w+ \(write\)/);
    const cookies = await browser.context.cookies();
    const session = cookies.find((cookie) => cookie.name === 'revwallet_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
  });

  it('a person with a write key creates two wallets, moves money between them, is refused an overdraft and 1.001 EUR; an admin closes one', async () => {
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

    // Closing needs an admin: a write key is not offered the form. Signed in as admin, the box must be ticked (the
    // browser enforces `required`), then the wallet leaves the list and its page answers 404.
    assert.equal(await page.getByRole('button', { name: 'Close wallet' }).count(), 0);
    await signOut(page);
    await signIn(page, server.base, ADMIN_KEY);
    await page.goto(`${server.base}${grace}`);
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

  it('a form posted from another site is refused and changes nothing', async () => {
    const id = await seed('Forgery Target', 'EUR', '10.00');
    const wallet = `/ui/wallets/${id}`;
    // A page of another site with a form aimed at this app (Playwright serves it; nothing leaves the machine).
    await browser.context.route('http://forger.test/**', (route) =>
      route.fulfill({
        contentType: 'text/html',
        body: `<!doctype html><title>Win a prize</title><form method="post" action="${server.base}${wallet}/deposit">
          <input type="hidden" name="amount" value="1000"><button type="submit">Claim</button></form>`,
      }),
    );
    await page.goto('http://forger.test/');
    const answer = await submit(page, page.getByRole('button', { name: 'Claim' }));
    assert.equal(answer.postStatus, 403);
    assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Form refused');
    await page.goto(`${server.base}${wallet}`);
    assert.equal(await balanceOf(page), '10.00 EUR');
  });

  it('a read key sees the wallets and their history but is offered no form', async () => {
    await page.goto(`${server.base}/`);
    await signOut(page);
    await signIn(page, server.base, readKey);
    assert.match(await page.locator('.account').innerText(), /\(read\)/);
    assert.ok((await page.locator('.wallets tbody tr').count()) > 0, 'the wallets are listed');
    assert.equal(await page.getByRole('button', { name: 'Create wallet' }).count(), 0);
    await assertAccessible(page, 'the home page of a read key');

    await page.locator('.wallets tbody tr').filter({ hasText: 'Ada Lovelace' }).getByRole('link').click();
    assert.match(await balanceOf(page), /EUR$/);
    assert.ok((await historyRows(page).count()) > 0, 'the history is shown');
    for (const form of ['Deposit', 'Withdraw', 'Transfer', 'Close wallet']) {
      assert.equal(await page.getByRole('button', { name: form, exact: true }).count(), 0, `no ${form} form`);
    }
    await assertAccessible(page, 'the wallet page of a read key');

    assert.deepEqual(browser.foreign, [], 'nothing is loaded from outside the app');
  });
});

describe('the web app in Chromium with JavaScript disabled', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base, { javaScriptEnabled: false, viewport: PHONE });
    page = browser.page;
    await signIn(page, server.base, writeKey);
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
    await signOut(page);
    await signIn(page, server.base, ADMIN_KEY);
    await page.goto(`${server.base}${to}`);
    await page.getByLabel(/^Yes, close wallet/).check();
    answer = await submit(page, page.getByRole('button', { name: 'Close wallet' }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);
    assert.equal(answer.url.pathname, '/');
    assert.equal(await page.locator('.wallets tbody tr').filter({ hasText: 'Plain Forms' }).count(), 0);
    assert.equal((await page.goto(`${server.base}${to}`)).status(), 404);

    assert.deepEqual(browser.foreign, [], 'nothing is loaded from outside the app');
  });
});
