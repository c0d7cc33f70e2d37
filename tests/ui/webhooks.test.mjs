// Browser test of the admin Webhooks page (issue 17) in Debian's headless Chromium: a webhook whose receiver (a
// real HTTP server on 127.0.0.1) fails once and then answers, its delivery shown delivered after two attempts,
// the page reached from the navigation by an admin only, axe-core on it, and its screenshots in docs/screenshots/.
// Run with `make ui-test`.

import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  ADMIN_KEY,
  assertNoSidewaysScroll,
  buildBinary,
  createKey,
  openBrowser,
  PHONE,
  screenshots,
  signIn,
  startServer,
} from './harness.mjs';

let server;
let receiver;
let receiverUrl;
let answered = 0;

const api = async (path, body) => {
  const response = await fetch(`${server.base}${path}`, {
    method: body ? 'POST' : 'GET',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN_KEY}` },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json() };
};

before(async () => {
  // Private addresses allowed (the receiver is on loopback) and quick retries, as in the API tests.
  server = await startServer(buildBinary(), {
    REVWALLET_WEBHOOK_ALLOW_PRIVATE: 'true',
    REVWALLET_WEBHOOK_RETRY_FIRST_MS: '100',
    REVWALLET_WEBHOOK_POLL_MS: '50',
  });
  receiver = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      answered += 1;
      response.writeHead(answered === 1 ? 503 : 204).end();
    });
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${receiver.address().port}/revwallet/events?source=browser-test`;
}, { timeout: 30 * 60_000 });

after(async () => {
  receiver?.close();
  await server?.stop();
});

describe('the admin Webhooks page in Chromium', () => {
  it('lists a webhook with its delivery, delivered after a failed attempt, and only admins reach it', async () => {
    const created = await api('/wallet/webhooks', { url: receiverUrl, events: ['wallet.opened'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const opened = await api('/wallet/', { owner: 'Ada Lovelace', currency: 'EUR', initial_balance: '250.00' });
    assert.equal(opened.status, 201);
    const deliveries = `/wallet/webhooks/${created.body.id}/deliveries`;
    for (let tries = 0; ; tries += 1) {
      const { body } = await api(deliveries);
      if (body.length === 1 && body[0].status === 'delivered') break;
      assert.ok(tries < 600, `never delivered: ${JSON.stringify(body)}`);
      await sleep(50);
    }

    const { page, foreign, close } = await openBrowser(server.base);
    try {
      await signIn(page, server.base, ADMIN_KEY);
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.waitForURL(`${server.base}/ui/webhooks`);
      assert.equal(await page.getByRole('heading', { level: 1 }).innerText(), 'Webhooks');
      assert.ok((await page.locator('.webhook-url').innerText()).includes(receiverUrl));
      const row = page.locator('tbody tr').first();
      const cells = (await row.locator('td').allInnerTexts()).map((t) => t.replace(/\s+/g, ' ').trim());
      assert.match(cells[0], /wallet\.opened/);
      assert.equal(cells[1], 'delivered');
      assert.equal(cells[2], '2');
      assert.match(cells[3], /^HTTP 204/);
      await screenshots(page, 'webhooks');
      await page.setViewportSize(PHONE);
      await assertNoSidewaysScroll(page, 'the webhooks page');
      assert.deepEqual(foreign, [], 'nothing loaded from elsewhere');
    } finally {
      await close();
    }

    // A write key's session has no link, and the page answers 403.
    const writer = await openBrowser(server.base);
    try {
      await signIn(writer.page, server.base, await createKey(server.base, 'write'));
      assert.equal(await writer.page.getByRole('link', { name: 'Webhooks' }).count(), 0);
      const response = await writer.page.goto(`${server.base}/ui/webhooks`);
      assert.equal(response.status(), 403);
    } finally {
      await writer.close();
    }
  });
});
