// A TCP relay in front of a server for WebSocket clients, on a free
// loopback port, that the test can make lose things the way networks do:
// drop one server frame whose text contains a marker (the frame is gone,
// the connection stays: a lost publish), drop everything the server sends
// (`mute`: an answer lost on the way), and cut every connection (`cut`:
// no WebSocket or Socket.IO goodbye). Server frames are not masked and
// the servers here do not compress, so frames are read as they come.
import net from "node:net";

export class FrameProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private dropMarker: string | null = null;
  private muted = false;
  private down = false;
  /** Frames dropped for the marker. */
  dropped = 0;

  private constructor(
    server: net.Server,
    readonly port: number,
  ) {
    this.server = server;
  }

  /** A relay to `127.0.0.1:upstream`. */
  static start(upstream: number): Promise<FrameProxy> {
    return new Promise((resolve) => {
      let proxy: FrameProxy;
      const server = net.createServer((client) => proxy.relay(client, upstream));
      server.listen(0, "127.0.0.1", () => {
        proxy = new FrameProxy(server, (server.address() as net.AddressInfo).port);
        resolve(proxy);
      });
    });
  }

  private relay(client: net.Socket, upstream: number): void {
    if (this.down) {
      client.destroy();
      return;
    }
    const server = net.connect(upstream, "127.0.0.1");
    this.sockets.add(client).add(server);
    const close = () => {
      client.destroy();
      server.destroy();
      this.sockets.delete(client);
      this.sockets.delete(server);
    };
    client.on("error", close).on("close", close);
    server.on("error", close).on("close", close);
    client.on("data", (chunk) => server.write(chunk));
    // Server to client: the HTTP upgrade answer, then frames.
    let buffered = Buffer.alloc(0);
    let upgraded = false;
    server.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!upgraded) {
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        client.write(buffered.subarray(0, end + 4));
        buffered = buffered.subarray(end + 4);
        upgraded = true;
      }
      for (;;) {
        const frame = frameLength(buffered);
        if (frame === null) break;
        const [head, length] = frame;
        const bytes = buffered.subarray(0, head + length);
        buffered = buffered.subarray(head + length);
        if (this.muted) continue;
        const marker = this.dropMarker;
        if (marker !== null && bytes.subarray(head).toString("utf8").includes(marker)) {
          this.dropMarker = null;
          this.dropped += 1;
          continue;
        }
        client.write(bytes);
      }
    });
  }

  /** Drops the next server frame whose text contains `marker`. */
  dropOnce(marker: string): void {
    this.dropMarker = marker;
  }

  /** Drops everything the server sends, until `up`. */
  mute(): void {
    this.muted = true;
  }

  /** Cuts every connection and refuses new ones, until `up`. */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  /** Relays again, both ways. */
  up(): void {
    this.down = false;
    this.muted = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `[header bytes, payload bytes]` of the unmasked frame at the start of `b`, when it is all there. */
function frameLength(b: Buffer): [number, number] | null {
  if (b.length < 2) return null;
  const short = b[1] & 0x7f;
  let head = 2;
  let length = short;
  if (short === 126) {
    if (b.length < 4) return null;
    length = b.readUInt16BE(2);
    head = 4;
  } else if (short === 127) {
    if (b.length < 10) return null;
    length = Number(b.readBigUInt64BE(2));
    head = 10;
  }
  if (b[1] & 0x80) head += 4;
  return b.length >= head + length ? [head, length] : null;
}
