import net from 'node:net';
import type { ISocketFactory } from 'kafkajs';

/**
 * A kafkajs socket factory whose sockets can stop reading: while held, responses (produce acks among
 * them) stay in the kernel buffers, so the client sees a broker that has not acknowledged yet. This is
 * how the conformance suite fills a producer's window against a real broker.
 */
export function pausableSockets(): { socketFactory: ISocketFactory; hold(): () => void } {
  const sockets = new Set<net.Socket>();
  let held = false;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = net.connect({ host, port }, onConnect);
    socket.setKeepAlive(true, 60_000);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    if (held) socket.pause();
    return socket;
  };
  const hold = () => {
    held = true;
    for (const s of sockets) s.pause();
    return () => {
      held = false;
      for (const s of sockets) s.resume();
    };
  };
  return { socketFactory, hold };
}
