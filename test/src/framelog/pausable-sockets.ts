import net from 'node:net';
import type { ISocketFactory } from 'kafkajs';

/**
 * A kafkajs socket factory whose sockets can stop reading: while held, responses (produce acks among
 * them) stay in the kernel buffers, so the client sees a broker that has not acknowledged yet. This is
 * how the conformance suite fills a producer's window against a real broker. Or they can be cut and
 * refused, as by a broker restarting.
 */
export function pausableSockets(): { socketFactory: ISocketFactory; hold(): () => void; refuse(): () => void } {
  const sockets = new Set<net.Socket>();
  let held = false;
  let refusing = false;
  const socketFactory: ISocketFactory = ({ host, port, onConnect }) => {
    // Refusing, a connection goes to a port nothing listens on: ECONNREFUSED, as from a broker restarting.
    const socket = refusing ? net.connect({ host: '127.0.0.1', port: 1 }, onConnect) : net.connect({ host, port }, onConnect);
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
  /** Resets every connection and refuses new ones (a broker restarting) until the returned function is called. */
  const refuse = () => {
    refusing = true;
    for (const s of sockets) s.destroy(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    return () => {
      refusing = false;
    };
  };
  return { socketFactory, hold, refuse };
}
