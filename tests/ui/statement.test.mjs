// Browser test of references, descriptions, the history filter and the CSV statement (SPEC §10): a person with a
// write key deposits with a description, sees it in the history, filters the history by type, and downloads the
// statement from the wallet page. Run with `make ui-test`.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';

import { ADMIN_KEY, buildBinary, createKey, openBrowser, screenshots, signIn, startServer, submit } from './harness.mjs';

let server;
let writeKey;

before(async () => {
  server = await startServer(buildBinary());
  writeKey = await createKey(server.base, 'write');
}, { timeout: 30 * 60_000 });

after(async () => {
  await server?.stop();
});

/** Creates a wallet through the JSON API and returns its id. */
async function seed(owner, initialBalance) {
  const response = await fetch(`${server.base}/wallet/`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: JSON.stringify({ owner, currency: 'EUR', initial_balance: initialBalance }),
  });
  const body = await response.text();
  assert.equal(response.status, 201, body);
  return JSON.parse(body).id;
}

describe('descriptions, the history filter and the statement in Chromium', () => {
  let browser;
  let page;

  before(async () => {
    browser = await openBrowser(server.base);
    page = browser.page;
  });

  after(async () => {
    await browser?.close();
  });

  it('a deposit with a description shows in the history, the filter keeps one type, and the statement downloads', async () => {
    const id = await seed('Ada Lovelace', '100.00');
    await signIn(page, server.base, writeKey);
    await page.goto(`${server.base}/ui/wallets/${id}`);

    const deposit = page.locator('section', { has: page.getByRole('heading', { name: 'Deposit', exact: true }) });
    await deposit.getByLabel(/^Amount/).fill('25.00');
    await deposit.getByLabel(/^Reference/).fill('INV-2026-042');
    await deposit.getByLabel(/^Description/).fill('Invoice 42, "consulting"\nsecond line');
    let answer = await submit(page, deposit.getByRole('button', { name: 'Deposit', exact: true }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);

    const withdraw = page.locator('section', { has: page.getByRole('heading', { name: 'Withdraw', exact: true }) });
    await withdraw.getByLabel(/^Amount/).fill('5.00');
    await withdraw.getByLabel(/^Description/).fill('Cash');
    answer = await submit(page, withdraw.getByRole('button', { name: 'Withdraw', exact: true }));
    assert.deepEqual([answer.postStatus, answer.status], [303, 200]);

    const rows = page.locator('.history tbody tr');
    assert.equal(await rows.count(), 3);
    const depositRow = rows.filter({ hasText: 'INV-2026-042' });
    assert.equal(await depositRow.count(), 1);
    assert.match(await depositRow.locator('.entry-description').innerText(), /^Invoice 42, "consulting"\r?\nsecond line$/);
    await screenshots(page, 'wallet-history-memo');

    // Filter: only withdrawals.
    await page.getByLabel('Type').selectOption('withdrawal');
    await Promise.all([page.waitForURL(/type=withdrawal/), page.getByRole('button', { name: 'Filter' }).click()]);
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /Withdrawal[\s\S]*Cash/);
    assert.equal(await page.getByLabel('Type').inputValue(), 'withdrawal');
    await page.getByRole('link', { name: 'Show all' }).click();
    assert.equal(await rows.count(), 3);

    // The statement: a download of RFC 4180 CSV with the description quoted.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV statement' }).click(),
    ]);
    assert.equal(download.suggestedFilename(), `wallet-${id}-statement.csv`);
    const csv = readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^created_at,entry_id,type,amount,balance_after,currency,reference,description\r\n/);
    assert.match(csv, /,opening_balance,,0\.00,EUR,,\r\n/);
    assert.match(csv, /,opening,100\.00,100\.00,EUR,,\r\n/);
    // The browser sends a textarea's line break as CRLF; it is stored and quoted as sent.
    assert.match(csv, /,deposit,25\.00,125\.00,EUR,INV-2026-042,"Invoice 42, ""consulting""\r\nsecond line"\r\n/);
    assert.match(csv, /,withdrawal,-5\.00,120\.00,EUR,,Cash\r\n/);
    assert.match(csv, /,closing_balance,,120\.00,EUR,,\r\n$/);
  });
});
