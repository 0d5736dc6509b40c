import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * The machine's floor for this benchmark: a bare node:http server in the measured process that reads
 * each POST's body and answers 200 at once (no express, no validation, no Postgres, no queue). The same
 * storm from the same sender thread shows what acknowledging 690 POSTs, 20 in flight, costs on this
 * machine before the receiver does any work: the part of the ack time no receiver code can remove.
 */
export async function startFloorServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const answer = '{"status":"accepted"}';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
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
