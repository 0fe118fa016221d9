/**
 * The one WebSocket of the page (`/ws`), shared by every component.
 *
 * Components subscribe to topics (`depth.TATA_INR`, `account.orderUpdate`, ...) and get each
 * frame's `data`. The socket subscribes to the union of their topics, and again after every
 * reconnect; private topics (`account.*`) carry the session's token. When the connection
 * drops it reconnects with a growing delay and `status` says so; `onReconnect` listeners
 * resync what the frames missed meanwhile (the book, trades, orders).
 */

import { session } from "./session";
import { Store } from "./store";

export type Status = "connecting" | "live" | "reconnecting";
type Handler = (data: any) => void;

const RETRY_MS = [250, 500, 1000, 2000, 4000];

export class Stream {
  readonly status = new Store<Status>("connecting");
  private socket: WebSocket | null = null;
  private handlers = new Map<string, Set<Handler>>();
  private reconnectListeners = new Set<() => void>();
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private nextId = 1;
  private token: string | null;

  constructor(private url: string) {
    this.token = session.get()?.token ?? null;
    // A new login resubscribes the private topics with its token; a logout drops them.
    session.subscribe((value) => {
      const token = value?.token ?? null;
      if (token === this.token) return;
      const privateTopics = [...this.handlers.keys()].filter(isPrivate);
      if (this.token !== null && privateTopics.length) this.send("UNSUBSCRIBE", privateTopics);
      this.token = token;
      if (token !== null && privateTopics.length) this.send("SUBSCRIBE", privateTopics);
    });
  }

  /** Calls `handler` with each frame of `topic`; returns the unsubscribe function. */
  subscribe(topic: string, handler: Handler): () => void {
    let set = this.handlers.get(topic);
    if (!set) {
      set = new Set();
      this.handlers.set(topic, set);
      this.send("SUBSCRIBE", [topic]);
    }
    set.add(handler);
    this.connect();
    return () => {
      const current = this.handlers.get(topic);
      if (!current) return;
      current.delete(handler);
      if (current.size === 0) {
        this.handlers.delete(topic);
        this.send("UNSUBSCRIBE", [topic]);
      }
    };
  }

  /** Called after every reconnect (not the first connect). */
  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener);
    return () => this.reconnectListeners.delete(listener);
  }

  private connect(): void {
    if (this.socket !== null || this.timer !== undefined) return;
    const socket = new WebSocket(this.url);
    this.socket = socket;
    socket.onopen = () => {
      const reconnected = this.attempt > 0 || this.status.get() === "reconnecting";
      this.attempt = 0;
      const topics = [...this.handlers.keys()];
      const publicTopics = topics.filter((t) => !isPrivate(t));
      const privateTopics = topics.filter(isPrivate);
      if (publicTopics.length) this.send("SUBSCRIBE", publicTopics);
      if (privateTopics.length) this.send("SUBSCRIBE", privateTopics);
      this.status.set("live");
      if (reconnected) for (const listener of [...this.reconnectListeners]) listener();
    };
    socket.onmessage = (event) => this.dispatch(event.data);
    socket.onclose = () => {
      this.socket = null;
      this.status.set("reconnecting");
      const delay = RETRY_MS[Math.min(this.attempt, RETRY_MS.length - 1)];
      this.attempt += 1;
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.connect();
      }, delay);
    };
  }

  private dispatch(raw: unknown): void {
    if (typeof raw !== "string") return;
    let message: { stream?: string; data?: unknown; error?: { code: number; message: string } };
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (message.error) {
      console.warn("stream error", message.error.code, message.error.message);
      return;
    }
    if (typeof message.stream !== "string") return; // an acknowledgement
    for (const handler of [...(this.handlers.get(message.stream) ?? [])]) handler(message.data);
  }

  private send(method: "SUBSCRIBE" | "UNSUBSCRIBE", topics: string[]): void {
    const socket = this.socket;
    if (socket === null || socket.readyState !== WebSocket.OPEN) return; // sent on open
    const privateTopics = topics.filter(isPrivate);
    if (method === "SUBSCRIBE" && privateTopics.length && this.token === null) {
      topics = topics.filter((t) => !isPrivate(t));
      if (!topics.length) return;
    }
    const frame: Record<string, unknown> = { method, params: topics, id: this.nextId++ };
    if (method === "SUBSCRIBE" && privateTopics.length && this.token !== null) frame.token = this.token;
    socket.send(JSON.stringify(frame));
  }
}

function isPrivate(topic: string): boolean {
  return topic.startsWith("account.");
}

function streamUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

export const stream = new Stream(streamUrl());
