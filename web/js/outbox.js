// Nothing recorded is lost: every finished take waits in IndexedDB until the server confirms it.
// Uploads are PUT /api/recordings/{uuid}: the UUID is made here, once per take, so a retry after a
// network failure, a server restart or a page reload stores exactly one recording. Failures that may
// pass (network, 5xx, 429) retry with exponential backoff that survives reloads; a refusal (the take
// is too short, silent, ...) is kept with its message so the annotator can listen and re-record.
// A take of a narrate or point project carries its pointing JSON (traces and points), stored here as
// the exact string sent, so a retry, even after a reload, sends the identical pair.

import { api, ApiError } from "./api.js";
import { t } from "./i18n.js";

const DB_NAME = "voicecap-outbox";
const STORE = "takes";
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 15000;

function openDb() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const store = request.result.createObjectStore(STORE, { keyPath: "uuid" });
      store.createIndex("state", "state");
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run(db, mode, work) {
  return new Promise((resolve, reject) => {
    const tx = db.transaction(STORE, mode);
    const result = work(tx.objectStore(STORE));
    tx.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    // The annotator gets a sentence in the page's language; the browser's own error stays as the cause.
    const failed = () =>
      new Error(t("outbox.storage_failed", "This device could not keep the take: its browser storage refused it."), {
        cause: tx.error,
      });
    tx.onerror = () => reject(failed());
    tx.onabort = () => reject(failed());
  });
}

export function newUuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function backoffMs(attempts) {
  const base = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempts - 1));
  return Math.round(base * (0.8 + Math.random() * 0.4)); // jitter: clients do not retry in lockstep
}

/** The request body of a take: its bytes as they are, or with pointing data a multipart form whose
 * `pointing` part comes first (the server checks it before it reads any audio). */
export function uploadBody(item) {
  if (!item.pointing) return { body: item.data, headers: { "Content-Type": item.contentType } };
  const form = new FormData();
  form.append("pointing", new Blob([item.pointing], { type: "application/json" }), "pointing.json");
  form.append("audio", new Blob([item.data], { type: item.contentType }), "take");
  return { body: form }; // fetch sets multipart/form-data with its boundary
}

/**
 * Events: "uploaded" {item, recording}, "retry" {item, delayMs, error}, "rejected" {item, error},
 * "auth" {item, error}, "changed" {pending}.
 */
export class Outbox extends EventTarget {
  constructor() {
    super();
    this._db = null;
    this._timer = 0;
    this._busy = false;
    this._wake = () => this.kick();
  }

  async db() {
    if (!this._db) this._db = await openDb();
    return this._db;
  }

  /** Keep a finished take; it is safe on this device from here on. */
  async add({ assignmentId, imageId, blob, contentType, seconds, peak, pointing = null }) {
    const item = {
      uuid: newUuid(),
      assignmentId,
      imageId,
      // An ArrayBuffer, not the Blob: older Safari cannot store Blobs in IndexedDB.
      data: await blob.arrayBuffer(),
      contentType,
      seconds,
      peak,
      pointing, // a JSON string, or null (describe projects)
      createdAt: Date.now(),
      attempts: 0,
      nextAttemptAt: 0,
      state: "pending",
      error: null,
    };
    await this.put(item);
    return item;
  }

  async put(item) {
    const db = await this.db();
    await run(db, "readwrite", (store) => store.put(item));
    this._changed();
  }

  async get(uuid) {
    const db = await this.db();
    return run(db, "readonly", (store) => store.get(uuid));
  }

  async all() {
    const db = await this.db();
    const items = await run(db, "readonly", (store) => store.getAll());
    return (items || []).sort((a, b) => a.createdAt - b.createdAt);
  }

  async remove(uuid) {
    const db = await this.db();
    await run(db, "readwrite", (store) => store.delete(uuid));
    this._changed();
  }

  async pending() {
    return (await this.all()).filter((item) => item.state === "pending");
  }

  async _changed() {
    const pending = await this.pending();
    this.dispatchEvent(new CustomEvent("changed", { detail: { pending } }));
  }

  /** Start uploading what is waiting (also what a previous page left), and keep at it. */
  start() {
    window.addEventListener("online", this._wake);
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") this.kick();
    });
    this.kick();
  }

  /** Try now whatever is due (or, with force, everything pending). */
  kick(force = false) {
    clearTimeout(this._timer);
    this._timer = setTimeout(() => this._drain(force), 0);
  }

  async _drain(force) {
    if (this._busy) {
      this._again = true;
      return;
    }
    this._busy = true;
    try {
      for (const item of await this.pending()) {
        if (!force && item.nextAttemptAt > Date.now()) continue;
        const stop = await this._attempt(item);
        if (stop) break;
      }
    } finally {
      this._busy = false;
    }
    const pending = await this.pending();
    if (this._again) {
      this._again = false;
      this.kick();
    } else if (pending.length) {
      const soonest = Math.min(...pending.map((item) => item.nextAttemptAt));
      this._timer = setTimeout(() => this._drain(false), Math.max(250, soonest - Date.now()));
    }
  }

  // One upload; returns true when the whole queue should wait (not logged in).
  async _attempt(item) {
    const params = new URLSearchParams({ assignment_id: item.assignmentId, client_seconds: item.seconds.toFixed(2) });
    try {
      const recording = await api(`/api/recordings/${item.uuid}?${params}`, { method: "PUT", ...uploadBody(item) });
      await this.remove(item.uuid);
      this.dispatchEvent(new CustomEvent("uploaded", { detail: { item, recording } }));
      return false;
    } catch (error) {
      const failure = error instanceof ApiError ? error : new ApiError(0, "network_error", String(error));
      if (failure.status === 401 || failure.code === "csrf_failed") {
        this.dispatchEvent(new CustomEvent("auth", { detail: { item, error: failure } }));
        return true; // api.js is taking us to the login page; the take stays here
      }
      if (failure.retryable) {
        item.attempts += 1;
        const delayMs = backoffMs(item.attempts);
        item.nextAttemptAt = Date.now() + delayMs;
        item.error = { code: failure.code, message: failure.message };
        await this.put(item);
        this.dispatchEvent(new CustomEvent("retry", { detail: { item, delayMs, error: failure } }));
        return false;
      }
      item.state = "rejected";
      item.error = { code: failure.code, message: failure.message };
      await this.put(item);
      this.dispatchEvent(new CustomEvent("rejected", { detail: { item, error: failure } }));
      return false;
    }
  }
}
