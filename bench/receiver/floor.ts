import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The machine's floor for this benchmark: a bare node:http server in the measured process that reads
 * each POST's body and answers 200 at once (no express, no validation, no Postgres, no queue). The same
 * storm from the same sender thread shows what acknowledging 690 POSTs, 20 in flight, costs on this
 * machine before the receiver does any work: the part of the ack time no receiver code can remove. Its
 * answers have the receiver's shape (a small JSON body, Server-Timing), so the sender's side of each POST
 * costs what it does against the receiver; the sender thread also warms up against one (sender.ts).
 */
export async function startFloorServer(): Promise<{ url: string; close(): Promise<void> }> {
  let id = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = JSON.stringify({ status: 'accepted', notification_id: ++id, new_events: 0, duplicates: 0 });
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(answer),
        'server-timing': 'read;dur=0.00, parse;dur=0.00, wait;dur=0.00, store;dur=0.00',
      });
      res.end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/alertmanager`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
