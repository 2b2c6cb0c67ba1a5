// Type tests for the generated client helpers and React hooks of
// schemas/chat.contract.json (chat.client.ts, health.client.ts, lib.ts,
// react.ts). `tsc --noEmit --strict` must pass: every `@ts-expect-error`
// line has to be an error.
import {
  AckDisconnectedError,
  AckError,
  AckTimeoutError,
  ChatClient,
  connectChat,
  type ChatSocket,
  type ErrorCode,
  type JoinThreadAck,
  type Message,
  type Transport,
} from "../../generated/ts/chat/chat.client";
import { HealthClient } from "../../generated/ts/chat/health.client";
import { useChatSocket, useHealthSocket, type ConnectionStatus } from "../../generated/ts/chat/react";

declare const url: string;

// The connect helper takes the usual `useWebSocket` options and returns the typed socket.
const socket: ChatSocket = connectChat({
  url,
  token: "t",
  reconnection: true,
  reconnectionAttempts: Infinity,
  reconnectionDelay: 1000,
});
socket.emit("typing", { threadId: "t1", isTyping: true });
// A token function (called on each reconnect), possibly async; or no token.
connectChat({ url, token: async () => "fresh" });
connectChat({ url, token: () => null });
connectChat({ token: null, io: { path: "/socket.io", withCredentials: true } });
// @ts-expect-error the token is a string (or a function returning one)
connectChat({ url, token: 42 });
// @ts-expect-error reconnection is a boolean
connectChat({ url, reconnection: "yes" });
// Transports, passed to io(): WebSocket only for several nodes without
// sticky sessions, or socket.io-client's own order.
connectChat({ url, transports: ["websocket"] });
connectChat({ url, transports: ["polling", "websocket"] });
const wsOnly: Transport[] = ["websocket"];
ChatClient.connect({ url, transports: wsOnly });
// @ts-expect-error not a transport name (socket.io-client's own type would take any string)
connectChat({ url, transports: ["websockets"] });
// @ts-expect-error a list of transports, not one
connectChat({ url, transports: "websocket" });

export async function acked(chat: ChatClient): Promise<void> {
  // Acked events resolve with the ack's data.
  const msg: Message = await chat.sendMessage({ threadId: "t1", content: "hi" });
  const joined: JoinThreadAck = await chat.joinThread({ threadId: "t1" }, { timeoutMs: 500 });
  void msg.createdAt;
  void joined.members;

  // Events without ack return nothing.
  const nothing: void = chat.typing({ threadId: "t1", isTyping: true });
  void nothing;
  // @ts-expect-error typing has no ack: there is no promise
  void chat.typing({ threadId: "t1", isTyping: false }).then(() => {});

  // Wrong payloads are rejected.
  // @ts-expect-error content is required
  await chat.sendMessage({ threadId: "t1" });
  // @ts-expect-error isTyping must be a boolean
  chat.typing({ threadId: "t1", isTyping: "yes" });
  // @ts-expect-error unknown property
  chat.markRead({ threadId: "t1", messageIds: [], extra: 1 });

  // Wrong ack types are rejected.
  // @ts-expect-error send_message acks a Message, not a JoinThreadAck
  const wrong: JoinThreadAck = await chat.sendMessage({ threadId: "t1", content: "hi" });
  void wrong;
  // @ts-expect-error a Message has no members
  void (await chat.sendMessage({ threadId: "t1", content: "hi" })).members;

  // Misspelled events are rejected, both ways.
  // @ts-expect-error no such client event
  await chat.sendMesage({ threadId: "t1", content: "hi" });
  // @ts-expect-error no such server event
  chat.on("new_mesage", () => {});
  // @ts-expect-error a client event is not a server event
  chat.on("send_message", () => {});

  // Server events are typed; `on` returns the unsubscribe function.
  const stop: () => void = chat.on("new_message", (e) => {
    const content: string = e.message.content;
    void content;
  });
  stop();
  chat.on("error", (e) => {
    const code: ErrorCode = e.code;
    void code;
  });
  // @ts-expect-error the typing indicator carries a boolean, not a string
  chat.on("typing_indicator", (e: { threadId: string; userId: string; isTyping: string }) => void e);

  // Failures are typed errors.
  try {
    await chat.sendMessage({ threadId: "t1", content: "hi" });
  } catch (e) {
    if (e instanceof AckError) {
      const code: ErrorCode = e.code;
      const text: string = e.message;
      const details: unknown = e.details;
      void [code, text, details, e.event];
      // @ts-expect-error not an error code of the contract
      if (e.code === "NOPE") return;
    } else if (e instanceof AckTimeoutError) {
      const ms: number = e.timeoutMs;
      void ms;
    } else if (e instanceof AckDisconnectedError) {
      void e.event;
    }
  }
}

// The client wraps a socket or connects itself.
const chat: ChatClient = ChatClient.connect({ url, token: "t", ackTimeoutMs: 2000 });
const again = new ChatClient(socket);
const sameSocket: ChatSocket = again.socket;
void chat;
void sameSocket;
export async function health(): Promise<number> {
  const h = HealthClient.connect({ url });
  const status = await h.requestRefresh({});
  // @ts-expect-error "fine" is not a status
  if (status.status === "fine") return 0;
  return status.uptimeSeconds;
}

// The hook: a typed `useWebSocket` result.
export function useChatStatus(token: string | null): string {
  const { socket, client, connected, error, status } = useChatSocket({
    url: "wss://example.com",
    token,
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: 1000,
    enabled: token !== null,
  });
  const s: ChatSocket | null = socket;
  const c: ChatClient | null = client;
  const e: Error | null = error;
  const st: ConnectionStatus = status;
  void [s, c, e, st];
  // @ts-expect-error the health hook's client is not a ChatClient
  const wrongClient: ChatClient | null = useHealthSocket({ url }).client;
  void wrongClient;
  // @ts-expect-error reconnectionDelay is a number
  useChatSocket({ reconnectionDelay: "1s" });
  // The hook takes the transports too (a change reconnects, like any option).
  useChatSocket({ url, transports: ["websocket"] });
  // @ts-expect-error not a transport name
  useChatSocket({ url, transports: ["long-polling"] });
  return connected ? "Connected" : (error?.message ?? "Disconnected");
}
