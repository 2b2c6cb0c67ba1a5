// The example chat: sign in with a dev token, join a thread, talk. Everything
// socket-related goes through the generated client and hook.
import { useEffect, useRef, useState, type FormEvent } from "react";
import { AckError, type Announcement, type ChatClient, type Message, type RecoveryGap, type RoomPosition } from "../../../generated/ts/chat/chat.client";
import { ContractMismatchError, useChatSocket, type ConnectionStatus } from "../../../generated/ts/chat/react";

interface Session {
  user: string;
  token: string;
}

/** The server: this page's origin, unless `VITE_SERVER_URL` says otherwise at build time. */
const SERVER_URL: string | undefined = import.meta.env.VITE_SERVER_URL || undefined;
const SESSION_KEY = "chat-web.session";
/** How long typing stays "on" without a keystroke, and how long others show it without an update. */
const TYPING_IDLE_MS = 2000;
const TYPING_SHOWN_MS = 6000;

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  disconnected: "Disconnected",
};

function describe(e: unknown): string {
  if (e instanceof AckError) return `${e.code}: ${e.message}`;
  return e instanceof Error ? e.message : String(e);
}

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    return raw === null ? null : (JSON.parse(raw) as Session);
  } catch {
    return null;
  }
}

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const signIn = (s: Session | null) => {
    if (s === null) sessionStorage.removeItem(SESSION_KEY);
    else sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    setSession(s);
  };
  return (
    <main>
      <h1>evcontract chat</h1>
      {session === null ? (
        <SignIn onSignedIn={signIn} />
      ) : (
        <Chat session={session} onSignOut={() => signIn(null)} />
      )}
    </main>
  );
}

function SignIn({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [user, setUser] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const name = user.trim();
    if (name === "") return;
    setBusy(true);
    setError(null);
    try {
      const res = await fetch(`${SERVER_URL ?? ""}/dev/token?user=${encodeURIComponent(name)}`);
      if (!res.ok) throw new Error(`GET /dev/token: HTTP ${res.status} (is the server running without JWT_SECRET?)`);
      onSignedIn({ user: name, token: (await res.text()).trim() });
    } catch (err) {
      setError(describe(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="card" onSubmit={submit}>
      <label>
        User name{" "}
        <input
          data-testid="user"
          value={user}
          onChange={(e) => setUser(e.target.value)}
          placeholder="alice"
          autoFocus
        />
      </label>
      <button data-testid="sign-in" disabled={busy || user.trim() === ""}>
        Sign in
      </button>
      {error !== null && <p className="error">{error}</p>}
    </form>
  );
}

function Chat({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { client, connected, status, error, lastGap } = useChatSocket({
    url: SERVER_URL,
    token: session.token,
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: 500,
    reconnectionDelayMax: 2000,
  });
  const [draftThread, setDraftThread] = useState("general");
  const [thread, setThread] = useState<string | null>(null);
  const [announcement, setAnnouncement] = useState<Announcement | null>(null);

  // Announcements reach every connection, in a thread or not: the latest one
  // shows as a banner until dismissed.
  useEffect(() => client?.on("announcement", setAnnouncement), [client]);

  return (
    <>
      <header className="card bar">
        <span>
          Signed in as <b data-testid="me">{session.user}</b>
        </span>
        <span data-testid="status" className={`status ${status}`}>
          {STATUS_TEXT[status]}
        </span>
        {error instanceof ContractMismatchError ? (
          <span data-testid="last-error" className="error">
            A newer version of this app is deployed. <button onClick={() => location.reload()}>Reload</button>
          </span>
        ) : (
          error !== null && (
            <span data-testid="last-error" className="error">
              Last error: {error.message}
            </span>
          )
        )}
        <button onClick={onSignOut}>Sign out</button>
      </header>
      {announcement !== null && (
        <p data-testid="announcement" className="card bar announcement" role="status">
          <span>
            <b>{announcement.from}</b>: {announcement.text}
          </span>
          <button onClick={() => setAnnouncement(null)}>Dismiss</button>
        </p>
      )}
      <form
        className="card bar"
        onSubmit={(e) => {
          e.preventDefault();
          if (draftThread.trim() !== "") setThread(draftThread.trim());
        }}
      >
        <label>
          Thread <input data-testid="thread" value={draftThread} onChange={(e) => setDraftThread(e.target.value)} />
        </label>
        <button data-testid="join" disabled={draftThread.trim() === ""}>
          Join
        </button>
      </form>
      {client !== null && thread !== null && (
        <Thread key={thread} client={client} connected={connected} lastGap={lastGap} threadId={thread} me={session.user} />
      )}
    </>
  );
}

/** Why a thread could not be recovered, for people. */
const GAP_TEXT: Record<RecoveryGap, string> = {
  trimmed: "more messages were sent while you were away than the server keeps",
  expired: "you were away longer than the server keeps messages",
  epoch: "the server lost its history, for example in a restart",
  no_history: "this thread keeps no history",
  refused: "the server did not let you back in",
  dropped: "the server could not send everything again in time",
  unavailable: "the server could not read its history just now",
};

function Thread({
  client,
  connected,
  lastGap,
  threadId,
  me,
}: {
  client: ChatClient;
  connected: boolean;
  lastGap: RoomPosition | null;
  threadId: string;
  me: string;
}) {
  const [members, setMembers] = useState<string[]>([]);
  const [messages, setMessages] = useState<Message[]>([]);
  const [typing, setTyping] = useState<Record<string, number>>({});
  const [draft, setDraft] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [joined, setJoined] = useState(false);
  const [gap, setGap] = useState<string | null>(null);
  const typingSent = useRef(false);
  const typingTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);

  const addMessage = (m: Message) =>
    setMessages((list) => (list.some((x) => x.id === m.id) ? list : [...list, m]));

  // Server events of this thread.
  useEffect(() => {
    const offs = [
      client.on("new_message", (e) => {
        if (e.threadId !== threadId) return;
        addMessage(e.message);
        setTyping(({ [e.message.userId]: _, ...rest }) => rest);
      }),
      client.on("joined", (e) => {
        if (e.threadId === threadId) setMembers((m) => (m.includes(e.userId) ? m : [...m, e.userId].sort()));
      }),
      client.on("left", (e) => {
        if (e.threadId === threadId) setMembers((m) => m.filter((u) => u !== e.userId));
      }),
      client.on("typing_indicator", (e) => {
        if (e.threadId !== threadId) return;
        setTyping(({ [e.userId]: _, ...rest }) => (e.isTyping ? { ...rest, [e.userId]: Date.now() } : rest));
      }),
      client.on("error", (e) => setProblem(`${e.event}: ${e.code}: ${e.message}`)),
    ];
    return () => offs.forEach((off) => off());
  }, [client, threadId]);

  // (Re)join whenever the connection is (re)established: a new connection
  // starts outside every room.
  useEffect(() => {
    if (!connected) {
      setJoined(false);
      return;
    }
    let current = true;
    client
      .joinThread({ threadId })
      .then((ack) => {
        if (!current) return;
        setMembers(ack.members);
        setJoined(true);
        setProblem(null);
      })
      .catch((e: unknown) => current && setProblem(`join: ${describe(e)}`));
    return () => {
      current = false;
    };
  }, [client, connected, threadId]);

  // Messages sent while the connection was away that the server could not
  // send again (its history was trimmed, expired or lost): reload the thread
  // and say so.
  useEffect(() => {
    if (lastGap === null || lastGap.room !== `thread:${threadId}`) return;
    let current = true;
    client
      .getThread({ threadId })
      .then((ack) => {
        if (!current) return;
        setMessages(ack.messages);
        setGap(`Some messages could not be recovered after the connection came back (${GAP_TEXT[lastGap.reason ?? "refused"]}); the thread was reloaded.`);
      })
      .catch((e: unknown) => current && setProblem(`reload: ${describe(e)}`));
    return () => {
      current = false;
    };
  }, [client, lastGap, threadId]);

  // Forget typists that went quiet without saying so.
  useEffect(() => {
    const timer = setInterval(() => {
      const now = Date.now();
      setTyping((t) => {
        const kept = Object.fromEntries(Object.entries(t).filter(([, at]) => now - at < TYPING_SHOWN_MS));
        return Object.keys(kept).length === Object.keys(t).length ? t : kept;
      });
    }, 1000);
    return () => clearInterval(timer);
  }, []);

  const setTypingState = (on: boolean) => {
    clearTimeout(typingTimer.current);
    if (on) typingTimer.current = setTimeout(() => setTypingState(false), TYPING_IDLE_MS);
    if (typingSent.current !== on && client.connected) {
      typingSent.current = on;
      client.typing({ threadId, isTyping: on });
    }
  };
  useEffect(() => () => clearTimeout(typingTimer.current), []);

  const send = async (e: FormEvent) => {
    e.preventDefault();
    const content = draft.trim();
    if (content === "") return;
    setTypingState(false);
    try {
      addMessage(await client.sendMessage({ threadId, content }));
      setDraft("");
      setProblem(null);
    } catch (err) {
      setProblem(`send: ${describe(err)}`);
    }
  };

  const typists = Object.keys(typing).filter((u) => u !== me);
  return (
    <section className="card thread">
      <h2>
        #{threadId} {joined ? "" : <small>(joining…)</small>}
      </h2>
      <p>
        Members:{" "}
        <span data-testid="members">{members.join(", ")}</span>
      </p>
      {gap !== null && (
        <p data-testid="gap" className="notice" role="status">
          {gap}
        </p>
      )}
      <ul data-testid="messages" className="messages">
        {messages.map((m) => (
          <li key={m.id} className={m.userId === me ? "mine" : ""}>
            <b>{m.userId}</b>: <span className="content">{m.content}</span>
          </li>
        ))}
      </ul>
      <p data-testid="typing" className="typing">
        {typists.length === 0 ? "\u00a0" : `${typists.join(", ")} ${typists.length === 1 ? "is" : "are"} typing…`}
      </p>
      <form className="bar" onSubmit={send}>
        <input
          data-testid="message"
          value={draft}
          placeholder="Message"
          onChange={(e) => {
            setDraft(e.target.value);
            setTypingState(e.target.value !== "");
          }}
        />
        <button data-testid="send" disabled={draft.trim() === ""}>
          Send
        </button>
      </form>
      {problem !== null && (
        <p data-testid="problem" className="error">
          {problem}
        </p>
      )}
    </section>
  );
}
