import net from 'node:net';

export interface PausableProxy {
  /** host:port the proxy listens on (127.0.0.1). */
  port: number;
  /**
   * From now on the far side "hangs": connections are still accepted, but no byte moves in either
   * direction, as with a frozen database host. Nothing is closed.
   */
  pause(): void;
  /** Bytes flow again, held ones included. */
  resume(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy on 127.0.0.1 in front of a real server that can be made to hang: the way a database looks
 * when its host freezes or the network path stalls (the kernel accepts, nothing answers), which a dead
 * server (connection refused) does not reproduce.
 */
export async function startPausableProxy(targetHost: string, targetPort: number): Promise<PausableProxy> {
  let paused = false;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    const pair = { client, upstream };
    pairs.add(pair);
    if (paused) {
      client.pause();
      upstream.pause();
    }
    // Forwarded by hand rather than piped: pipe() resumes a paused source on 'drain', which would end the hang.
    client.on('data', (chunk) => upstream.write(chunk));
    upstream.on('data', (chunk) => client.write(chunk));
    client.on('end', () => upstream.end());
    upstream.on('end', () => client.end());
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    pause() {
      paused = true;
      for (const { client, upstream } of pairs) {
        client.pause();
        upstream.pause();
      }
    },
    resume() {
      paused = false;
      for (const { client, upstream } of pairs) {
        client.resume();
        upstream.resume();
      }
    },
    async close() {
      for (const { client, upstream } of pairs) {
        client.destroy();
        upstream.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
