import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { withDirectRoutes, type DirectRoute } from './direct-routes.ts';
import { UserError } from './errors.ts';
import { readBody } from './http.ts';
import { createLogger } from './logger.ts';

/** Log lines the server wrote (JSON), to see what it logged about a failure. */
const logged: Array<{ msg: string; level: number }> = [];
const logger = createLogger(
  'info',
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      logged.push(JSON.parse(chunk.toString('utf8')) as { msg: string; level: number });
      done();
    },
  }),
  'json'
);

const routes: DirectRoute[] = [
  {
    method: 'POST',
    path: '/hooks/echo',
    async handle(req, res) {
      const body = await readBody(req, 1024);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-answered-by': 'direct' });
      res.end(body);
    },
  },
  {
    method: 'POST',
    path: '/hooks/refuse',
    // Refuses before reading a byte of the body, as the webhook does without credentials.
    handle: async () => {
      throw new UserError(401, 'missing Authorization header');
    },
  },
  {
    method: 'POST',
    path: '/hooks/fail',
    handle: async () => {
      throw new Error('the database is gone');
    },
  },
];

let server: http.Server;
let base: string;
before(async () => {
  const fallback: http.RequestListener = (req, res) => {
    req.resume();
    res.writeHead(299, { 'x-answered-by': 'fallback' });
    res.end(`${req.method} ${req.url}`);
  };
  server = http.createServer(withDirectRoutes(routes, fallback, logger));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
after(() => agent.destroy());

/** One request on the one keep-alive connection: the answer, and whether it went on a connection used before. */
const send = (method: string, path: string, body = '') =>
  new Promise<{ status: number; by: string | undefined; text: string; reused: boolean; connection?: string }>(
    (resolve, reject) => {
      const req = http.request(`${base}${path}`, { method, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            by: res.headers['x-answered-by'] as string | undefined,
            text: Buffer.concat(chunks).toString('utf8'),
            reused: req.reusedSocket,
            connection: res.headers.connection,
          })
        );
      });
      req.on('error', reject);
      req.end(body);
    }
  );

describe('withDirectRoutes', () => {
  test('the exact method and path go to the route, its query dropped; every other request to the fallback, untouched', async () => {
    assert.deepEqual(await send('POST', '/hooks/echo', 'hello'), {
      status: 200,
      by: 'direct',
      text: 'hello',
      reused: false,
      connection: 'keep-alive',
    });
    assert.equal((await send('POST', '/hooks/echo?from=am', 'q')).by, 'direct');
    for (const [method, path] of [
      ['GET', '/hooks/echo'],
      ['PUT', '/hooks/echo'],
      ['POST', '/hooks/echo/'],
      ['POST', '/Hooks/Echo'],
      ['POST', '/hooks/echo2'],
      ['POST', '/hooks'],
    ] as const) {
      const answer = await send(method, path, method === 'GET' ? '' : 'x');
      assert.deepEqual(
        [answer.status, answer.by, answer.text],
        [299, 'fallback', `${method} ${path}`],
        `${method} ${path}`
      );
    }
  });

  test("a refusal is answered as Express's error handler answers it: the JSON error, the unread body settled", async () => {
    const refused = await send('POST', '/hooks/refuse', 'x'.repeat(200_000));
    assert.equal(refused.status, 401);
    assert.deepEqual(JSON.parse(refused.text), { error: 'missing Authorization header' });
    const next = await send('POST', '/hooks/echo', 'after');
    assert.deepEqual([next.status, next.text, next.reused], [200, 'after', true]);
    // A body declared past what the server reads off (1 MiB): refused at once, and the connection closed after.
    const large = await send('POST', '/hooks/refuse', 'x'.repeat(2 * 1024 * 1024));
    assert.deepEqual([large.status, large.connection], [401, 'close']);
  });

  test("an error that is not the caller's is a 500 without internals, logged", async () => {
    logged.length = 0;
    const failed = await send('POST', '/hooks/fail', '{}');
    assert.equal(failed.status, 500);
    assert.deepEqual(JSON.parse(failed.text), { error: 'internal error' });
    assert.ok(!failed.text.includes('database'));
    assert.deepEqual(
      logged.map((l) => l.msg),
      ['request failed']
    );
  });

  test('two routes for one method and path are refused at start-up; none leaves the fallback as it is', () => {
    const fallback: http.RequestListener = () => {};
    assert.equal(withDirectRoutes([], fallback, logger), fallback);
    assert.throws(() => withDirectRoutes([routes[0]!, { ...routes[1]!, path: '/hooks/echo' }], fallback, logger), {
      message: 'two direct routes for POST /hooks/echo',
    });
  });
});
