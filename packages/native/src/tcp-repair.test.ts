import { spawn } from 'node:child_process';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { leaveTcpRepair } from './tcp-repair';

test('a TCP socket of another process that is not in repair mode, a pipe, a closed fd, a gone process: all false', async () => {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client: Socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await new Promise((r) => client.once('connect', r));
  // The child holds the connected socket as fd 3 and a pipe as fd 1.
  const child = spawn('sleep', ['30'], { stdio: ['ignore', 'pipe', 'ignore', client] });
  try {
    expect(leaveTcpRepair(child.pid!, 3)).toBe(false);
    expect(leaveTcpRepair(child.pid!, 1)).toBe(false);
    expect(leaveTcpRepair(child.pid!, 77)).toBe(false);
  } finally {
    child.kill('SIGKILL');
    client.destroy();
    server.close();
  }
  await new Promise((r) => child.once('exit', r));
  expect(leaveTcpRepair(child.pid!, 3)).toBe(false);
  expect(() => leaveTcpRepair(-1, 3)).toThrow(RangeError);
});
