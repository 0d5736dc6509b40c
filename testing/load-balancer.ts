import net from 'node:net';

export interface LoadBalancer {
  /** The one stable address (127.0.0.1) clients use, whichever backends are up. */
  port: number;
  url: string;
  /** Connections sent to each backend so far (by its host:port). */
  connections: Map<string, number>;
  close(): Promise<void>;
}

/**
 * A TCP load balancer on 127.0.0.1, the stand-in for whatever HTTP load balancer is put in front of the
 * two Control Room instances: each new connection goes to the next backend in turn, and a backend that
 * refuses the connection (a killed instance) is skipped for the next one. A connection already open to a
 * backend that dies is cut, as a real load balancer's would be: the client (Alertmanager, Grafana)
 * retries its request, which the next connection sends to a live backend. When no backend accepts, the
 * client's connection is closed at once (the client sees an error and retries later).
 */
export async function startLoadBalancer(
  backends: ReadonlyArray<{ host: string; port: number }>
): Promise<LoadBalancer> {
  if (backends.length === 0) throw new Error('a load balancer needs at least one backend');
  let next = 0;
  const connections = new Map<string, number>();
  const open = new Set<net.Socket>();
  const server = net.createServer((client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => client.destroy());
    client.pause();
    const first = next++ % backends.length;
    const tryBackend = (attempt: number) => {
      if (attempt >= backends.length || client.destroyed) {
        client.destroy();
        return;
      }
      const backend = backends[(first + attempt) % backends.length]!;
      const upstream = net.connect(backend.port, backend.host);
      open.add(upstream);
      upstream.once('close', () => open.delete(upstream));
      const refused = () => {
        upstream.destroy();
        tryBackend(attempt + 1);
      };
      upstream.once('error', refused);
      upstream.once('connect', () => {
        upstream.off('error', refused);
        const key = `${backend.host}:${backend.port}`;
        connections.set(key, (connections.get(key) ?? 0) + 1);
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
    };
    tryBackend(0);
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    connections,
    async close() {
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
