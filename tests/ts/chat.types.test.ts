// Type tests for the generated typings of schemas/chat.contract.json.
// `tsc --noEmit --strict` must pass: every `@ts-expect-error` line has to be
// an error, so a generator that stopped rejecting wrong code fails here.
import { io } from "socket.io-client";
import { chat, health } from "../../generated/ts/chat/index";

declare const url: string;
const socket: chat.ChatSocket = io(`${url}${chat.NAMESPACE}`, { auth: { token: "t" } });

// Right payloads, right ack shapes.
socket.emit("send_message", { threadId: "t1", content: "hi" }, (res) => {
  if (res.success) {
    const m: chat.Message = res.data;
    const when: string = m.createdAt;
    void when;
  } else {
    const code: chat.ErrorCode = res.code;
    const text: string = res.message;
    void code;
    void text;
  }
});
socket.emit("typing", { threadId: "t1", isTyping: true });
socket.emit("join_thread", { threadId: "t1" }, (res) => {
  if (res.success) {
    const members: string[] = res.data.members;
    void members;
  }
});
socket.on("new_message", (e) => {
  const content: string = e.message.content;
  void content;
});
socket.on("error", (e) => {
  const failed: keyof chat.ClientEvents = e.event;
  void failed;
});

// A common style: payload types by event name.
const payload: chat.ClientEvents["send_message"] = { threadId: "t", content: "c" };
const ackData: chat.ClientEventAcks["send_message"] | undefined = undefined;
void payload;
void ackData;

// Wrong payloads are rejected.
// @ts-expect-error content is required
socket.emit("send_message", { threadId: "t1" }, () => {});
// @ts-expect-error isTyping must be a boolean
socket.emit("typing", { threadId: "t1", isTyping: "yes" });
// @ts-expect-error unknown property
socket.emit("typing", { threadId: "t1", isTyping: true, extra: 1 });

// Misspelled or unknown events are rejected, both ways.
// @ts-expect-error no such client event
socket.emit("send_mesage", { threadId: "t1", content: "hi" });
// @ts-expect-error no such server event
socket.on("new_mesage", () => {});
// @ts-expect-error a server event cannot be emitted by the client
socket.emit("new_message", { threadId: "t1", message: {} as chat.Message });

// Wrong ack shapes are rejected.
socket.emit("send_message", { threadId: "t1", content: "hi" }, (res) => {
  if (res.success) {
    // @ts-expect-error the ack data is a Message, which has no `members`
    void res.data.members;
  }
});
// @ts-expect-error the ack callback receives an AckResponse<Message>, not a number
socket.emit("send_message", { threadId: "t1", content: "hi" }, (res: number) => void res);
// @ts-expect-error typing has no ack
socket.emit("typing", { threadId: "t1", isTyping: true }, () => {});

// Enumerations are literal unions.
const status: health.HealthStatus["status"] = "ok";
// @ts-expect-error "fine" is not a status
const badStatus: health.HealthStatus["status"] = "fine";
void status;
void badStatus;
// @ts-expect-error not an error code
const badCode: chat.ErrorCode = "NOPE";
void badCode;
const ns: "/chat" = chat.NAMESPACE;
void ns;
