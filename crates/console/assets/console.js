// The switchboard console. Plain JavaScript on the public HTTP API only:
// people chat (a user token), operators run deliveries (a company key).
// Everything shown comes from the API; every failure shows the API's error
// message (with its request id). Routes live in the URL fragment, so a
// reload keeps the place: #/c/{channel}, #/ops, #/ops/{bot}, #/ops/{bot}/{integration}.
"use strict";

// ---------- the credential and the API ----------

const SESSION_KEY = "switchboard.credential";

const session = {
  credential: sessionStorage.getItem(SESSION_KEY),
  /** "person" for user tokens and bot keys, "operator" for company keys. */
  get kind() {
    return this.credential && this.credential.startsWith("wsk-") ? "operator" : "person";
  },
  signIn(credential) {
    $("#notices").replaceChildren();
    if (this.credential && this.credential !== credential.trim()) this.signOut();
    this.credential = credential.trim();
    sessionStorage.setItem(SESSION_KEY, this.credential);
  },
  /** Forgets the credential and everything read with it. */
  signOut() {
    this.credential = null;
    sessionStorage.removeItem(SESSION_KEY);
    chat.stop();
    ops.bots = null;
    ops.metrics = null;
  },
};

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the server answered ${status}`);
    this.status = status;
    this.type = body && body.type;
    this.requestId = body && body.requestId;
  }
}

/** Calls the API; answers the parsed JSON body, or throws an ApiError. A
 * read refused for the moment (429, 503 with `Retry-After` of a few
 * seconds) is asked again, twice at most; a change is not. */
async function api(method, path, body, retries = 2) {
  const headers = { Authorization: `Bearer ${session.credential}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, { message: `the server cannot be reached (${err.message})` });
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch (_) { parsed = null; }
  if (!response.ok) {
    const wait = Number(response.headers.get("retry-after"));
    if (method === "GET" && retries > 0 && (response.status === 429 || response.status === 503) && wait >= 0 && wait <= 5) {
      await new Promise((resume) => setTimeout(resume, Math.max(wait, 0.2) * 1000));
      return api(method, path, body, retries - 1);
    }
    if (response.status === 401) {
      session.signOut();
      route();
    }
    throw new ApiError(response.status, parsed);
  }
  return parsed;
}

const q = (params) => {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
};

// ---------- small DOM helpers (no HTML strings: text is always text) ----------

function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const $ = (selector, root = document) => root.querySelector(selector);

function notify(message, kind = "info") {
  const box = $("#notices");
  const notice = h("div", { class: `notice ${kind}` });
  if (message instanceof ApiError) {
    notice.append(message.message);
    if (message.requestId) notice.append(h("small", {}, `${message.type || "error"} · request ${message.requestId}`));
  } else {
    notice.append(String(message instanceof Error ? message.message : message));
  }
  box.append(notice);
  setTimeout(() => notice.remove(), kind === "error" ? 9000 : 4000);
}

/** Runs an action, showing its failure; answers its value or undefined. */
async function attempt(action) {
  try {
    return await action();
  } catch (err) {
    notify(err, "error");
    return undefined;
  }
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit",
});
/** With seconds, for logs. */
function whenExact(timestamp) {
  return timestamp ? dateTimeFormat.format(new Date(timestamp)) : "";
}

function when(timestamp) {
  if (!timestamp) return "";
  const date = new Date(timestamp);
  const today = new Date().toDateString() === date.toDateString();
  return today ? timeFormat.format(date) : dateTimeFormat.format(date);
}

/** A modal dialog with a form; resolves with the form's data or null. */
function dialog(title, fields, submitLabel = "Save") {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" }, h("h2", {}, title), fields,
      h("div", { class: "buttons" },
        h("button", { type: "button", value: "cancel", onclick: () => { box.close(); } }, "Cancel"),
        h("button", { type: "submit", class: "primary", value: "ok" }, submitLabel)));
    const box = h("dialog", { "aria-label": title }, form);
    let result = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      result = new FormData(form);
      box.close();
    });
    box.addEventListener("close", () => { box.remove(); resolve(result); });
    document.body.append(box);
    box.showModal();
  });
}

/** Shows a secret once, with a way to copy it. */
function showSecret(title, secret) {
  const box = h("dialog", { "aria-label": title },
    h("h2", {}, title),
    h("p", {}, "Copy it now: it is not shown again."),
    h("p", { class: "secret", "data-secret": "" }, secret),
    h("div", { class: "buttons" },
      h("button", { type: "button", onclick: () => navigator.clipboard && navigator.clipboard.writeText(secret).then(() => notify("Copied")) }, "Copy"),
      h("button", { type: "button", class: "primary", onclick: () => box.close() }, "Done")));
  box.addEventListener("close", () => box.remove());
  document.body.append(box);
  box.showModal();
}

// ---------- routing ----------

function takeCredentialFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  const credential = fragment.get("token") || fragment.get("key");
  if (credential) {
    session.signIn(credential);
    const next = fragment.get("open") || (session.kind === "operator" ? "#/ops" : "#/");
    history.replaceState(null, "", next);
  }
}

let currentView = null;

function route() {
  takeCredentialFromFragment();
  const path = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  $("#sign-out").hidden = !session.credential;
  if (!session.credential) return show(signInView());
  if (session.kind === "operator") {
    if (path[0] !== "ops") { history.replaceState(null, "", "#/ops"); return route(); }
    return show(opsView(path[1], path[2]));
  }
  if (path[0] === "ops") { history.replaceState(null, "", "#/"); return route(); }
  return show(chatView(path[0] === "c" ? path[1] : null));
}

function show(view) {
  if (currentView && currentView !== view && currentView.leave) currentView.leave();
  currentView = view;
  if (view.render) view.render();
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", () => {
  $("#sign-out").addEventListener("click", () => {
    session.signOut();
    location.hash = "#/";
    route();
  });
  route();
});

// ---------- sign-in ----------

function signInView() {
  return {
    render() {
      $("#who").textContent = "";
      $("#live").hidden = true;
      const input = h("textarea", { id: "credential", rows: 3, required: true, autocomplete: "off", spellcheck: "false" });
      const form = h("form", { class: "signin card", onsubmit: (event) => {
        event.preventDefault();
        session.signIn(input.value);
        location.hash = session.kind === "operator" ? "#/ops" : "#/";
        route();
      } },
      h("h1", {}, "Sign in to switchboard"),
      h("label", { for: "credential" }, "User token or company key"),
      input,
      h("p", { class: "hint" }, "People sign in with a user token (wsu-v1-…) to chat; operators with a company key (wsk-v1-…) to see bots, integrations and deliveries. `switchboard demo` prints links that sign you in."),
      h("button", { type: "submit", class: "primary" }, "Sign in"));
      $("#app").replaceChildren(form);
      input.focus();
    },
  };
}

// ---------- chat: state shared by the views ----------

const chat = {
  me: null,
  users: new Map(),        // user id -> user
  channels: new Map(),     // channel id -> { channel, members, users, messages, unread, latest }
  order: [],               // channel ids, latest activity first
  typing: new Map(),       // channel id -> Map(user id -> expires at ms)
  seenEvents: new Set(),
  feed: null,              // { controller, cursor }
  loaded: null,            // a promise: the channel list is loaded
  open: null,              // the channel shown
  quoting: null,           // the message the composer answers
  lastTypingSent: 0,
  render: () => {},
  renderTyping: () => {},

  stop() {
    if (this.feed) this.feed.controller.abort();
    this.feed = null;
    this.loaded = null;
    this.me = null;
    this.channels.clear();
    this.users.clear();
    this.order = [];
  },

  name(userId) {
    const user = this.users.get(userId);
    return (user && (user.name || user.email || user.phone)) || userId;
  },

  title(entry) {
    if (entry.channel.subject) return entry.channel.subject;
    const others = entry.members.map((member) => member.id).filter((id) => id !== this.me);
    return others.length ? others.map((id) => this.name(id)).join(", ") : "(only you)";
  },

  lastReadKey(channelId) { return `switchboard.read.${this.me}.${channelId}`; },
  lastRead(channelId) { return Number(localStorage.getItem(this.lastReadKey(channelId)) || 0); },
  markRead(channelId) {
    const entry = this.channels.get(channelId);
    if (!entry) return;
    localStorage.setItem(this.lastReadKey(channelId), String(Date.now()));
    entry.unread = 0;
  },

  /** Asks who is typing in the channel (what the feed says of other instances' typing). */
  async refreshTyping(channelId) {
    const answer = await api("GET", `/v2/conversations/channels/${encodeURIComponent(channelId)}/typing`).catch(() => null);
    if (answer) this.receive("typing", { channelId, typing: answer.typing });
  },

  remember(users) {
    for (const user of users || []) this.users.set(user.id, user);
  },

  async loadChannel(channelId) {
    const details = await api("GET", `/v2/conversations/channels/${encodeURIComponent(channelId)}`);
    this.remember(details.users);
    const known = this.channels.get(channelId);
    const entry = known || { messages: null, unread: 0, latest: null };
    entry.channel = details.channel;
    entry.members = details.members;
    this.channels.set(channelId, entry);
    if (!this.order.includes(channelId)) this.order.unshift(channelId);
    return entry;
  },

  async loadMessages(channelId) {
    const entry = this.channels.get(channelId);
    const page = await api("GET", `/v2/conversations/channels/${encodeURIComponent(channelId)}/messages?limit=50`);
    entry.messages = page.messages.slice().reverse();
    for (const message of entry.messages) this.users.set(message.user.id, message.user);
    const latest = entry.messages[entry.messages.length - 1];
    entry.latest = latest || null;
    const read = this.lastRead(channelId);
    entry.unread = entry.messages.filter((message) =>
      message.user.id !== this.me && Date.parse(message.createdAt) > read).length;
  },

  /** Opens the feed, then loads the channels (so nothing falls between). */
  start() {
    if (this.loaded) return this.loaded;
    this.loaded = new Promise((resolve, reject) => {
      this.connect(resolve, reject);
    }).then(async () => {
      const list = await api("GET", "/v2/conversations/channels?limit=100");
      this.order = list.channels.map((channel) => channel.channelId);
      await Promise.all(list.channels.map(async (channel) => {
        await this.loadChannel(channel.channelId);
        await this.loadMessages(channel.channelId);
      }));
      this.sort();
    });
    this.loaded.catch((err) => { this.loaded = null; notify(err, "error"); });
    return this.loaded;
  },

  sort() {
    const activity = (id) => {
      const entry = this.channels.get(id);
      const latest = entry && entry.latest ? Date.parse(entry.latest.createdAt) : 0;
      return Math.max(latest, entry ? Date.parse(entry.channel.updatedAt) || 0 : 0);
    };
    this.order = [...new Set(this.order)].filter((id) => this.channels.has(id));
    this.order.sort((a, b) => activity(b) - activity(a));
  },

  // ----- the live feed: Server-Sent Events read with fetch (it sends the credential) -----

  connect(ready, failed, attemptNumber = 0) {
    const controller = new AbortController();
    const previous = this.feed;
    this.feed = { controller, cursor: previous ? previous.cursor : null };
    const headers = { Authorization: `Bearer ${session.credential}`, Accept: "text/event-stream" };
    if (this.feed.cursor) headers["Last-Event-ID"] = this.feed.cursor;
    const live = $("#live");
    fetch("/v2/conversations/events", { headers, signal: controller.signal }).then(async (response) => {
      if (!response.ok) {
        const body = await response.json().catch(() => null);
        throw new ApiError(response.status, body);
      }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, "");
          const event = parseEvent(block);
          if (!event) continue;
          if (event.id) this.feed.cursor = event.id;
          if (event.name === "ready") {
            this.me = JSON.parse(event.data).userId;
            attemptNumber = 0;
            live.hidden = false;
            live.className = "live";
            live.textContent = "● live";
            if (ready) { ready(); ready = null; failed = null; }
          } else {
            this.receive(event.name, JSON.parse(event.data));
          }
        }
      }
      throw new Error("the feed ended");
    }).catch((err) => {
      if (controller.signal.aborted) return;
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
        if (failed) failed(err); else notify(err, "error");
        if (err.status === 401) { session.signOut(); route(); }
        return;
      }
      live.hidden = false;
      live.className = "live down";
      live.textContent = "○ reconnecting";
      const delay = Math.min(10000, 500 * 2 ** attemptNumber);
      setTimeout(() => {
        if (this.feed && this.feed.controller === controller) this.connect(ready, failed, attemptNumber + 1);
      }, delay);
    });
  },

  receive(type, body) {
    if (type === "typing") {
      const now = Date.now();
      const typing = new Map();
      for (const entry of body.typing) {
        if (entry.userId !== this.me) typing.set(entry.userId, Date.parse(entry.expiresAt) || now + 5000);
      }
      this.typing.set(body.channelId, typing);
      this.renderTyping();
      return;
    }
    if (this.seenEvents.has(body.id)) return;
    this.seenEvents.add(body.id);
    if (this.seenEvents.size > 2000) this.seenEvents = new Set([...this.seenEvents].slice(-1000));
    this.apply(type, body).then(() => this.render()).catch((err) => notify(err, "error"));
  },

  /** Drops a channel this person no longer sees, and leaves it if open. */
  forget(channelId) {
    this.channels.delete(channelId);
    this.order = this.order.filter((id) => id !== channelId);
    if (this.open === channelId) location.hash = "#/";
  },

  async apply(type, body) {
    const data = body.data || {};
    const channelId = body.channelId;
    this.remember(data.users);
    if (data.user) this.users.set(data.user.id, data.user);
    let entry = this.channels.get(channelId);
    switch (type) {
      case "chat:member:removed":
        // The person removed hears of it too, and no longer sees the channel.
        if ((data.members || []).some((member) => member.id === this.me)) {
          this.forget(channelId);
          break;
        }
        // falls through: another member left, and the channel is read again.
      case "chat:channel:created":
      case "chat:member:added":
      case "chat:channel:updated":
        if (!entry) {
          entry = await this.loadChannel(channelId);
          await this.loadMessages(channelId);
        } else {
          await this.loadChannel(channelId);
        }
        break;
      case "chat:channel:deleted":
        this.forget(channelId);
        break;
      case "chat:message:new": {
        if (!entry) { await this.loadChannel(channelId); await this.loadMessages(channelId); break; }
        const message = data.message;
        this.users.set(message.user.id, message.user);
        if (entry.messages && !entry.messages.some((known) => known.messageId === message.messageId)) {
          entry.messages.push(message);
          if (message.user.id !== this.me && !(this.open === channelId && document.hasFocus())) entry.unread += 1;
        }
        entry.latest = message;
        const typing = this.typing.get(channelId);
        if (typing) typing.delete(message.user.id);
        if (this.open === channelId && document.hasFocus()) this.markRead(channelId);
        break;
      }
      case "chat:message:updated":
      case "chat:message:deleted":
      case "chat:reaction:new":
      case "chat:reaction:deleted": {
        if (!entry || !entry.messages) break;
        const id = data.message.messageId;
        if (type === "chat:message:deleted") {
          entry.messages = entry.messages.filter((message) => message.messageId !== id);
          break;
        }
        // The message as it is now (reaction counts included).
        const fresh = await api("GET", `/v2/conversations/channels/${encodeURIComponent(channelId)}/messages/${encodeURIComponent(id)}`)
          .then((answer) => answer.message).catch(() => data.message);
        entry.messages = entry.messages.map((message) => (message.messageId === id ? fresh : message));
        break;
      }
      default:
        break;
    }
    this.sort();
  },
};

function parseEvent(block) {
  const event = { name: "message", data: "", id: null };
  let hasData = false;
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.name = value;
    else if (field === "id") event.id = value;
    else if (field === "data") { event.data += (hasData ? "\n" : "") + value; hasData = true; }
  }
  return hasData ? event : null;
}

// ---------- chat: the view ----------

const REACTIONS = [["like", "👍"], ["love", "❤️"], ["haha", "😂"], ["wow", "😮"], ["sad", "😢"]];

function chatView(channelId) {
  const view = {
    render() {
      chat.open = channelId;
      chat.render = () => draw();
      chat.renderTyping = () => {
        const line = $("#typing");
        if (line) line.replaceWith(typingLine());
      };
      $("#who").textContent = chat.me ? `Signed in as ${chat.name(chat.me)}` : "Signing in…";
      draw();
      chat.start().then(async () => {
        if (channelId && !chat.channels.has(channelId)) {
          await attempt(async () => { await chat.loadChannel(channelId); await chat.loadMessages(channelId); });
        }
        if (channelId && chat.channels.has(channelId)) {
          chat.markRead(channelId);
          chat.refreshTyping(channelId);
        }
        $("#who").textContent = `Signed in as ${chat.name(chat.me)}`;
        draw();
        const composer = $("#composer-text");
        if (composer) composer.focus();
      }, () => {});
    },
    leave() { chat.render = () => {}; chat.renderTyping = () => {}; chat.quoting = null; },
  };


  /** Where the keyboard focus is, so that a redraw can put it back. */
  function focusPlace() {
    const active = document.activeElement;
    if (!active || active === document.body) return null;
    if (active.id) return { id: active.id };
    const item = active.closest("[data-message-id]");
    if (!item) return null;
    return { message: item.dataset.messageId, index: [...item.querySelectorAll("button, select, a, textarea, input")].indexOf(active) };
  }

  function restoreFocus(place) {
    if (!place) return;
    if (place.id) { const element = document.getElementById(place.id); if (element) element.focus(); return; }
    const item = document.querySelector(`[data-message-id="${CSS.escape(place.message)}"]`);
    const focusable = item && item.querySelectorAll("button, select, a, textarea, input")[place.index];
    if (focusable) focusable.focus();
  }

  function draw() {
    const app = $("#app");
    app.classList.toggle("in-channel", Boolean(channelId));
    const keepDraft = $("#composer-text");
    const draft = keepDraft ? keepDraft.value : "";
    const place = focusPlace();
    const list = $(".messages");
    const nearBottom = !list || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    const scrolled = list ? list.scrollTop : 0;
    app.replaceChildren(sidebar(), channelId ? channelPane() : h("main", { id: "main", class: "main" },
      h("div", { class: "empty" }, chat.order.length
        ? "Choose a channel, or start a new one."
        : (chat.loaded ? "No channels yet: start a group or a direct conversation." : "Loading…"))));
    const composer = $("#composer-text");
    if (composer) composer.value = draft;
    const messages = $(".messages");
    if (messages) messages.scrollTop = nearBottom ? messages.scrollHeight : scrolled;
    restoreFocus(place);
  }

  function sidebar() {
    const items = chat.order.map((id) => {
      const entry = chat.channels.get(id);
      const latest = entry.latest;
      return h("li", {}, h("a", { href: `#/c/${encodeURIComponent(id)}`, id: `channel-link-${id}`, "aria-current": id === channelId ? "page" : null },
        h("span", { class: "name" }, chat.title(entry)),
        h("span", { class: "when" }, when(latest ? latest.createdAt : entry.channel.updatedAt)),
        h("span", { class: "preview" }, latest ? `${chat.name(latest.user.id)}: ${latest.text || (latest.attachments.length ? "(file)" : "")}` : "No messages yet"),
        entry.unread ? h("span", { class: "badge", "aria-label": `${entry.unread} unread` }, String(entry.unread)) : null));
    });
    return h("nav", { class: "side", "aria-label": "Channels" },
      h("div", { class: "tools" },
        h("button", { type: "button", onclick: newGroup }, "New group"),
        h("button", { type: "button", onclick: newDirect }, "New direct")),
      h("ul", {}, items));
  }

  function channelPane() {
    const entry = chat.channels.get(channelId);
    if (!entry) return h("main", { id: "main", class: "main" }, h("div", { class: "empty" }, chat.loaded ? "Loading the channel…" : "Loading…"));
    const messages = entry.messages || [];
    return h("main", { id: "main", class: "main" },
      h("div", { class: "head" },
        h("a", { href: "#/", class: "back", "aria-label": "All channels" }, "←"),
        h("h1", {}, chat.title(entry)),
        h("span", { class: "hint" }, `${entry.channel.memberCount} members`),
        h("button", { type: "button", onclick: () => members(entry) }, "Members")),
      messages.length
        ? h("ol", { class: "messages", "aria-label": "Messages", "aria-live": "polite" }, messages.map((message) => messageItem(entry, message)))
        : h("div", { class: "messages empty" }, "No messages yet: say hello."),
      typingLine(),
      composer(entry));
  }

  function typingLine() {
    const now = Date.now();
    const typing = chat.typing.get(channelId) || new Map();
    const names = [...typing].filter(([, expires]) => expires > now).map(([id]) => chat.name(id));
    return h("div", { class: "typing", id: "typing", "aria-live": "polite" },
      names.length ? `${names.join(", ")} ${names.length > 1 ? "are" : "is"} typing…` : "");
  }

  function messageItem(entry, message) {
    const mine = message.user.id === chat.me;
    const base = `/v2/conversations/channels/${encodeURIComponent(channelId)}/messages/${encodeURIComponent(message.messageId)}`;
    const item = h("li", { class: `message${mine ? " mine" : ""}`, "data-message-id": message.messageId, tabindex: "-1" },
      h("div", { class: "meta" },
        h("span", { class: "author" }, chat.name(message.user.id)),
        message.user.bot ? h("span", {}, "bot") : null,
        h("time", { datetime: message.createdAt }, when(message.createdAt)),
        message.updatedAt ? h("span", {}, "(edited)") : null),
      message.quote ? h("div", { class: "quote" }, `${chat.name(message.quote.user.id)}: ${message.quote.text || "(file)"}`) : null,
      message.text ? h("div", { class: "text" }, message.text) : null);
    if (message.attachments.length) {
      item.append(h("div", { class: "row" }, message.attachments.map((file) =>
        h("button", { type: "button", class: "link", onclick: () => download(base, file) },
          `📎 ${file.name} (${size(file.size)})`))));
    }
    const buttons = (message.elements || []).flatMap((element) => (element.actions || []).map((action) => action.button).filter(Boolean));
    if (buttons.length) {
      item.append(h("div", { class: "row", role: "group", "aria-label": "Buttons" }, buttons.map((button) =>
        h("button", { type: "button", class: `bot-button${button.variant === "primary" ? " primary" : ""}`, disabled: Boolean(button.disabled),
          onclick: () => press(base, button) }, button.text))));
    }
    const counts = message.reactionCounts || {};
    const myReactions = new Set((message.latestReactions || []).filter((reaction) => reaction.userId === chat.me).map((reaction) => reaction.type));
    const chips = Object.entries(counts).filter(([, count]) => count > 0).map(([type, count]) => {
      const label = (REACTIONS.find(([name]) => name === type) || [type, type])[1];
      const pressed = myReactions.has(type);
      return h("button", { type: "button", class: "reaction", "aria-pressed": String(pressed), "aria-label": `${type} ${count}`,
        onclick: () => react(base, type, pressed) }, `${label} ${count}`);
    });
    const reactSelect = h("select", { "aria-label": "Add a reaction", onchange: (event) => {
      if (event.target.value) react(base, event.target.value, myReactions.has(event.target.value));
    } }, h("option", { value: "" }, "React…"), REACTIONS.map(([type, label]) => h("option", { value: type }, `${label} ${type}`)));
    item.append(h("div", { class: "row actions" }, chips, reactSelect,
      h("button", { type: "button", class: "link", onclick: () => { chat.quoting = message; draw(); $("#composer-text").focus(); } }, "Quote"),
      mine && message.text !== undefined ? h("button", { type: "button", class: "link", onclick: () => edit(base, message) }, "Edit") : null,
      mine ? h("button", { type: "button", class: "link danger", onclick: () => remove(base) }, "Delete") : null));
    return item;
  }

  function composer(entry) {
    const text = h("textarea", { id: "composer-text", rows: 2, "aria-label": "Message", placeholder: `Message ${chat.title(entry)}`,
      onkeydown: (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) { event.preventDefault(); form.requestSubmit(); }
        if (event.key === "Escape" && chat.quoting) { chat.quoting = null; draw(); }
      },
      oninput: () => typing(entry) });
    const file = h("input", { type: "file", id: "composer-file", onchange: () => upload(file) });
    const form = h("form", { class: "composer", onsubmit: (event) => { event.preventDefault(); send(text); } },
      chat.quoting ? h("div", { class: "quoting" }, `Quoting ${chat.name(chat.quoting.user.id)}: ${chat.quoting.text || "(file)"} `,
        h("button", { type: "button", class: "link", onclick: () => { chat.quoting = null; draw(); } }, "Cancel")) : null,
      text,
      h("label", { class: "file-label" }, file, h("span", {}, "Attach")),
      h("button", { type: "submit", class: "primary" }, "Send"));
    return form;
  }

  function typing(entry) {
    const now = Date.now();
    if (now - chat.lastTypingSent < 3000) return;
    chat.lastTypingSent = now;
    api("POST", `/v2/conversations/channels/${encodeURIComponent(entry.channel.channelId)}/typing/start`, { ttlSeconds: 6 }).catch(() => {});
  }

  async function send(textArea, attachments) {
    const text = textArea ? textArea.value.trim() : "";
    if (!text && !attachments) return;
    const body = { text: text || undefined, attachments };
    if (chat.quoting) body.quote = { messageId: chat.quoting.messageId };
    // Cleared at once (a redraw while the request runs keeps what the
    // composer holds); given back if the message is refused.
    if (textArea) textArea.value = "";
    const sent = await attempt(() => api("POST", `/v2/conversations/channels/${encodeURIComponent(channelId)}/messages`, body));
    if (!sent) {
      const composer = $("#composer-text");
      if (composer && !composer.value) composer.value = text;
      return;
    }
    chat.quoting = null;
    chat.lastTypingSent = 0;
    await chat.apply("chat:message:new", { channelId, data: { message: sent.message } });
    chat.markRead(channelId);
    draw();
  }

  async function upload(input) {
    const chosen = input.files && input.files[0];
    if (!chosen) return;
    const made = await attempt(() => api("POST", `/v2/conversations/channels/${encodeURIComponent(channelId)}/files`, {
      name: chosen.name, contentType: chosen.type || undefined, size: chosen.size,
    }));
    if (!made) return;
    const put = await attempt(async () => {
      const response = await fetch(made.presignedUploadUrl, { method: "PUT", body: chosen, headers: chosen.type ? { "Content-Type": chosen.type } : {} });
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      return true;
    });
    input.value = "";
    if (put) await send($("#composer-text"), [{ id: made.fileId }]);
  }

  async function download(base, file) {
    const link = await attempt(() => api("GET", `${base}/files/${encodeURIComponent(file.id)}/url`));
    if (!link) return;
    const anchor = h("a", { href: link.url, download: file.name, rel: "noopener" });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  }

  async function press(base, button) {
    const handler = button.handler || {};
    if (handler.link) { window.open(handler.link.url, "_blank", "noopener"); return; }
    if (handler.reply) {
      await attempt(() => api("POST", `/v2/conversations/channels/${encodeURIComponent(channelId)}/messages`, { text: handler.reply.text || button.text }));
      return;
    }
    if (handler.action) {
      const done = await attempt(() => api("POST", `${base}/actions`, { actionId: handler.action.id }));
      if (done) notify(`Sent “${button.text}” to the bot`);
    }
  }

  async function react(base, type, pressed) {
    if (pressed) await attempt(() => api("DELETE", `${base}/reactions/${encodeURIComponent(type)}`));
    else await attempt(() => api("POST", `${base}/reactions`, { type }));
  }

  async function edit(base, message) {
    const text = h("textarea", { name: "text", rows: 4, required: true, id: "edit-text" });
    text.value = message.text || "";
    const data = await dialog("Edit message", [h("label", { for: "edit-text" }, "Text"), text]);
    if (!data) return;
    await attempt(() => api("PATCH", base, { set: { text: data.get("text") } }));
  }

  async function remove(base) {
    if (!window.confirm("Delete this message?")) return;
    await attempt(() => api("DELETE", base));
  }

  function knownPeople(except) {
    return [...chat.users.values()].filter((user) => user.id !== chat.me && !(except || []).includes(user.id))
      .sort((a, b) => chat.name(a.id).localeCompare(chat.name(b.id)));
  }

  function peopleChoices(except, type = "checkbox") {
    const people = knownPeople(except);
    return h("div", { class: "choices", role: "group", "aria-label": "People and bots" },
      people.length ? people.map((user) => h("label", {},
        h("input", { type, name: "member", value: user.id }),
        `${chat.name(user.id)}${user.bot ? " (bot)" : ""}`)) : h("p", { class: "hint" }, "Nobody else yet: invite by email below."));
  }

  const emails = (text) => (text || "").split(/[\s,;]+/).filter(Boolean).map((email) => ({ email }));

  async function newGroup() {
    const data = await dialog("New group", [
      h("label", { for: "group-subject" }, "Subject"), h("input", { id: "group-subject", name: "subject", required: true, maxlength: 255 }),
      h("label", {}, "Members"), peopleChoices([]),
      h("label", { for: "group-invite" }, "Invite by email"), h("input", { id: "group-invite", name: "invite", placeholder: "ana@example.com, …" }),
    ], "Create");
    if (!data) return;
    const made = await attempt(() => api("POST", "/v2/conversations/channels", {
      subject: data.get("subject"), members: data.getAll("member"), membersToInvite: emails(data.get("invite")),
    }));
    if (made) { chat.remember(made.users); await chat.loadChannel(made.channel.channelId); await chat.loadMessages(made.channel.channelId); location.hash = `#/c/${encodeURIComponent(made.channel.channelId)}`; }
  }

  async function newDirect() {
    const data = await dialog("New direct conversation", [
      h("label", {}, "With"), peopleChoices([], "radio"),
      h("label", { for: "direct-invite" }, "Or by email"), h("input", { id: "direct-invite", name: "invite", type: "email" }),
    ], "Open");
    if (!data) return;
    const member = data.get("member");
    const invite = data.get("invite");
    if (!member && !invite) { notify("Choose someone, or give an email", "error"); return; }
    const made = await attempt(() => api("POST", "/v2/conversations/channels/direct",
      member ? { memberId: member } : { memberToInvite: { email: invite } }));
    if (made) {
      const id = (made.channel || made).channelId;
      await chat.loadChannel(id);
      await chat.loadMessages(id);
      location.hash = `#/c/${encodeURIComponent(id)}`;
    }
  }

  async function members(entry) {
    const current = entry.members.map((member) => member.id);
    const data = await dialog(`Members of ${chat.title(entry)}`, [
      h("ul", {}, entry.members.map((member) => h("li", {}, `${chat.name(member.id)} · ${member.role}`))),
      h("label", {}, "Add"), peopleChoices(current),
      h("label", { for: "members-invite" }, "Invite by email"), h("input", { id: "members-invite", name: "invite" }),
    ], "Add");
    if (!data) return;
    const chosen = data.getAll("member");
    const invite = emails(data.get("invite"));
    if (!chosen.length && !invite.length) return;
    const added = await attempt(() => api("POST", `/v2/conversations/channels/${encodeURIComponent(entry.channel.channelId)}/members`, {
      members: chosen, membersToInvite: invite,
    }));
    if (added) { chat.remember(added.users); await chat.loadChannel(entry.channel.channelId); draw(); }
  }

  return view;
}

// Typing indicators expire by themselves; the open channel's list is asked
// again now and then (other instances' typing reaches this feed that way).
setInterval(() => {
  if (chat.open && session.credential && session.kind === "person") chat.refreshTyping(chat.open);
}, 3000);
setInterval(() => chat.renderTyping(), 1000);
window.addEventListener("focus", () => { if (chat.open && chat.channels.has(chat.open)) { chat.markRead(chat.open); chat.render(); } });

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

// ---------- operations ----------

const ops = { bots: null, timer: null, metrics: null };

function opsView(botId, integrationId) {
  let stopped = false;
  const view = {
    async render() {
      $("#who").textContent = "Operator (company key)";
      $("#live").hidden = true;
      $("#app").classList.remove("in-channel");
      if (!ops.bots) {
        $("#app").replaceChildren(h("main", { id: "main", class: "main" }, h("div", { class: "empty" }, "Loading…")));
        const answer = await attempt(() => api("GET", "/v2/users/bots"));
        if (!answer) return;
        ops.bots = answer.bots;
      }
      const main = h("main", { id: "main", class: "main" });
      $("#app").replaceChildren(botList(), main);
      if (integrationId) await integrationPage(main);
      else if (botId) await botPage(main);
      else overview(main);
    },
    leave() { stopped = true; clearInterval(ops.timer); ops.timer = null; },
  };

  function botList() {
    return h("nav", { class: "side", "aria-label": "Bots" },
      h("div", { class: "tools" }, h("a", { href: "#/ops" }, "Overview"),
        h("button", { type: "button", onclick: () => { ops.bots = null; view.render(); } }, "Refresh")),
      h("ul", {}, ops.bots.length ? ops.bots.map((bot) => h("li", {}, h("a", { href: `#/ops/${encodeURIComponent(bot.id)}`, "aria-current": bot.id === botId ? "page" : null },
        h("span", { class: "name" }, bot.name || bot.id), h("span", { class: "when" }, "bot"),
        h("span", { class: "preview" }, bot.id)))) : h("li", { class: "empty" }, "No bots yet: create one with POST /v2/users/bots or `switchboard bots create`.")));
  }

  function overview(main) {
    const panel = h("div", { class: "metrics", id: "metrics" });
    main.append(h("div", { class: "head" }, h("h1", {}, "Deliveries, live")),
      h("div", { class: "page" }, panel,
        h("p", { class: "hint" }, "From the server's own /metrics, every 2 seconds. Choose a bot to see its integrations and their delivery logs.")));
    const tick = () => metricsPanel(panel);
    tick();
    clearInterval(ops.timer);
    ops.timer = setInterval(() => { if (!stopped) tick(); }, 2000);
  }

  async function botPage(main) {
    const bot = ops.bots.find((candidate) => candidate.id === botId);
    const answer = await attempt(() => api("GET", `/v2/users/bots/${encodeURIComponent(botId)}/integrations`));
    if (!answer || stopped) return;
    const rows = answer.integrations.map((integration) => h("tr", {},
      h("td", {}, h("a", { href: `#/ops/${encodeURIComponent(botId)}/${encodeURIComponent(integration.integrationId)}` }, integration.integrationId)),
      h("td", {}, integration.type),
      h("td", { class: "snippet" }, target(integration)),
      h("td", {}, h("span", { class: `status ${integration.state}` }, integration.state), integration.disabledReason ? ` — ${integration.disabledReason}` : ""),
      h("td", {}, when(integration.lastSuccessAt) || "never")));
    main.append(h("div", { class: "head" }, h("h1", {}, bot ? (bot.name || bot.id) : botId),
      h("button", { type: "button", class: "primary", onclick: createIntegration }, "New integration")),
    h("div", { class: "page" }, rows.length
      ? h("div", { class: "scroll" }, h("table", {}, h("thead", {}, h("tr", {}, ["Integration", "Type", "Target", "State", "Last success"].map((name) => h("th", {}, name)))), h("tbody", {}, rows)))
      : h("div", { class: "empty" }, "This bot has no integration yet: its events are not delivered anywhere. Create a webhook, SQS or pull integration.")));
  }

  async function createIntegration() {
    const type = h("select", { name: "type", id: "integration-type" }, ["webhook", "sqs", "pull"].map((name) => h("option", { value: name }, name)));
    const webhookFields = h("div", {}, h("label", { for: "integration-url" }, "Webhook URL"), h("input", { id: "integration-url", name: "url", type: "url", placeholder: "https://bot.example.com/hook" }));
    const sqsFields = h("div", { hidden: true },
      h("label", { for: "sqs-queue" }, "Queue URL"), h("input", { id: "sqs-queue", name: "queueUrl", type: "url" }),
      h("label", { for: "sqs-region" }, "Region"), h("input", { id: "sqs-region", name: "region", placeholder: "eu-west-1" }),
      h("label", { for: "sqs-key" }, "Access key id"), h("input", { id: "sqs-key", name: "accessKeyId" }),
      h("label", { for: "sqs-secret" }, "Secret access key"), h("input", { id: "sqs-secret", name: "secretAccessKey", type: "password" }),
      h("label", { for: "sqs-endpoint" }, "Endpoint URL (SQS-compatible server; optional)"), h("input", { id: "sqs-endpoint", name: "endpointUrl", type: "url" }));
    type.addEventListener("change", () => {
      webhookFields.hidden = type.value !== "webhook";
      sqsFields.hidden = type.value !== "sqs";
    });
    const data = await dialog("New integration", [h("label", { for: "integration-type" }, "Type"), type, webhookFields, sqsFields,
      h("label", { for: "integration-types" }, "Event types (optional, comma-separated; empty: all)"), h("input", { id: "integration-types", name: "eventTypes" })], "Create");
    if (!data) return;
    const body = { type: data.get("type") };
    if (body.type === "webhook") body.url = data.get("url");
    if (body.type === "sqs") {
      for (const field of ["queueUrl", "region", "accessKeyId", "secretAccessKey", "endpointUrl"]) if (data.get(field)) body[field] = data.get(field);
    }
    const types = (data.get("eventTypes") || "").split(/[\s,]+/).filter(Boolean);
    if (types.length) body.eventTypes = types;
    const made = await attempt(() => api("POST", `/v2/users/bots/${encodeURIComponent(botId)}/integrations`, body));
    if (!made) return;
    if (made.secret) showSecret("The integration's signing secret", made.secret);
    location.hash = `#/ops/${encodeURIComponent(botId)}/${encodeURIComponent(made.integration.integrationId)}`;
  }

  async function integrationPage(main) {
    const base = `/v2/users/bots/${encodeURIComponent(botId)}/integrations/${encodeURIComponent(integrationId)}`;
    const got = await attempt(() => api("GET", base));
    if (!got || stopped) return;
    const integration = got.integration || got;
    const filter = h("select", { id: "status-filter", "aria-label": "Show", onchange: () => { cursor = null; load(true); } },
      [["", "All deliveries"], ["pending", "Pending"], ["delivered", "Delivered"], ["dead", "Dead letters"]].map(([value, label]) => h("option", { value }, label)));
    const body = h("tbody", { id: "deliveries" });
    const more = h("button", { type: "button", hidden: true, onclick: () => load(false) }, "Older");
    let cursor = null;
    const expanded = new Set();
    const operation = (label, path, after, kind) => h("button", { type: "button", class: kind, onclick: async () => {
      const done = await attempt(() => api("POST", `${base}/${path}`, path === "rotate-secret" ? {} : undefined));
      if (done) after(done);
    } }, label);
    const since = h("input", { id: "replay-since", type: "datetime-local", step: 1, required: true });
    const until = h("input", { id: "replay-until", type: "datetime-local", step: 1 });
    main.append(
      h("div", { class: "head" }, h("h1", {}, `${integration.type} integration`),
        h("span", { class: `status ${integration.state}`, id: "integration-state" }, integration.state),
        integration.state === "active"
          ? operation("Pause", "pause", () => view.render())
          : operation("Resume", "resume", () => view.render()),
        operation("Send test event", "test", (answer) => notify(`Test event ${answer.eventId} queued`)),
        integration.type !== "pull"
          ? operation("Rotate secret", "rotate-secret", (answer) => showSecret("The new signing secret", answer.secret))
          : null),
      h("div", { class: "page" },
        h("div", { class: "card" }, h("dl", { class: "details" },
          h("dt", {}, "Id"), h("dd", {}, integration.integrationId),
          h("dt", {}, "Target"), h("dd", {}, target(integration)),
          h("dt", {}, "Events"), h("dd", {}, integration.eventTypes ? integration.eventTypes.join(", ") : "all"),
          h("dt", {}, "Last success"), h("dd", {}, when(integration.lastSuccessAt) || "never"),
          integration.failingSince ? [h("dt", {}, "Failing since"), h("dd", {}, when(integration.failingSince))] : null,
          integration.disabledReason ? [h("dt", {}, "Disabled"), h("dd", {}, integration.disabledReason)] : null)),
        h("div", { class: "card" }, h("h2", {}, "Replay a time range"),
          h("form", { class: "toolbar", onsubmit: async (event) => {
            event.preventDefault();
            const range = { since: new Date(since.value).toISOString() };
            if (until.value) range.until = new Date(until.value).toISOString();
            const answer = await attempt(() => api("POST", `${base}/replay`, range));
            if (answer) { notify(`Queued ${answer.queued} events again`); load(true); }
          } },
          h("label", { for: "replay-since" }, "From"), since, h("label", { for: "replay-until" }, "until"), until,
          h("button", { type: "submit" }, "Replay range"))),
        h("div", { class: "toolbar" }, h("h2", {}, "Delivery log"), filter,
          h("button", { type: "button", onclick: () => load(true) }, "Refresh"), h("span", { class: "hint" }, "Refreshes every 2 seconds")),
        h("div", { class: "scroll" }, h("table", {},
          h("thead", {}, h("tr", {}, ["Created", "Event", "Seq", "Status", "Attempts", "Last error", ""].map((name) => h("th", {}, name)))),
          body)),
        more));

    async function load(fromStart) {
      const answer = await api("GET", `${base}/deliveries${q({ status: filter.value, limit: 50, cursor: fromStart ? null : cursor })}`)
        .catch((err) => { notify(err, "error"); return null; });
      if (!answer || stopped) return;
      const rows = answer.deliveries.flatMap((delivery) => deliveryRows(delivery));
      if (fromStart) body.replaceChildren(...rows); else body.append(...rows);
      if (fromStart && !answer.deliveries.length) body.replaceChildren(h("tr", {}, h("td", { colspan: 7, class: "empty" },
        filter.value === "dead" ? "No dead letters." : "Nothing delivered yet: events appear here as they are queued.")));
      cursor = answer.nextCursor || null;
      more.hidden = !cursor;
    }

    function deliveryRows(delivery) {
      const attempts = delivery.attempts || [];
      const open = expanded.has(delivery.deliveryId);
      const toggle = h("button", { type: "button", class: "link", "aria-expanded": String(open), onclick: () => {
        if (expanded.has(delivery.deliveryId)) expanded.delete(delivery.deliveryId); else expanded.add(delivery.deliveryId);
        load(true);
      } }, `${attempts.length} ${open ? "▾" : "▸"}`);
      const row = h("tr", { "data-event-id": delivery.eventId, "data-delivery-id": delivery.deliveryId },
        h("td", {}, whenExact(delivery.createdAt)),
        h("td", {}, delivery.eventType, h("div", { class: "hint" }, delivery.eventId)),
        h("td", { class: "num" }, delivery.channelSeq === undefined ? "" : String(delivery.channelSeq)),
        h("td", {}, h("span", { class: `status ${delivery.status}` }, delivery.status)),
        h("td", { class: "num" }, toggle),
        h("td", { class: "snippet" }, delivery.lastError || ""),
        h("td", {}, h("button", { type: "button", onclick: async () => {
          const answer = await attempt(() => api("POST", `${base}/replay`, { eventIds: [delivery.eventId] }));
          if (answer) { notify(`Queued ${answer.queued} event again`); expanded.add(delivery.deliveryId); load(true); }
        } }, "Replay")));
      if (!open) return [row];
      const detail = h("tr", { class: "attempts" }, h("td", { colspan: 7 }, attempts.length
        ? h("table", {}, h("thead", {}, h("tr", {}, ["Attempted", "Outcome", "Status", "ms", "Error", "Answer"].map((name) => h("th", {}, name)))),
          h("tbody", {}, attempts.map((one) => h("tr", { class: "attempt" },
            h("td", {}, whenExact(one.attemptedAt)),
            h("td", {}, h("span", { class: `status ${one.outcome}` }, one.outcome)),
            h("td", { class: "num" }, one.statusCode === undefined || one.statusCode === null ? "" : String(one.statusCode)),
            h("td", { class: "num" }, one.durationMs === undefined ? "" : one.durationMs.toFixed(1)),
            h("td", { class: "snippet" }, one.error || ""),
            h("td", { class: "snippet" }, one.responseSnippet || "")))))
        : "No attempt yet."));
      return [row, detail];
    }

    await load(true);
    clearInterval(ops.timer);
    ops.timer = setInterval(() => { if (!stopped && !cursor) load(true); }, 2000);
  }

  return view;
}

function target(integration) {
  if (integration.type === "webhook") return integration.url || "";
  if (integration.type === "sqs") return `${integration.queueUrl || ""} (${integration.region || ""})`;
  return "the bot fetches its events (GET /v2/bot/events)";
}

// ----- the metrics panel: counters turned into rates between two reads -----

function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: match[1], labels, value: Number(match[4]) });
  }
  return samples;
}

const sum = (samples, name, keep = () => true) =>
  samples.filter((sample) => sample.name === name && keep(sample.labels)).reduce((total, sample) => total + sample.value, 0);

/** The 99th percentile of what a histogram's buckets gained between two reads, in seconds. */
function p99(before, after, name) {
  const buckets = (samples) => new Map(samples.filter((sample) => sample.name === `${name}_bucket`).map((sample) => [sample.labels.le, sample.value]));
  const was = buckets(before);
  const now = [...buckets(after)].map(([le, count]) => [le === "+Inf" ? Infinity : Number(le), count - (was.get(le) || 0)]).sort((a, b) => a[0] - b[0]);
  const total = now.length ? now[now.length - 1][1] : 0;
  if (!total) return null;
  const bound = now.find(([, count]) => count >= total * 0.99);
  return bound ? bound[0] : null;
}

async function metricsPanel(panel) {
  let text;
  try {
    const response = await fetch("/metrics");
    text = await response.text();
  } catch (_) {
    panel.replaceChildren(h("p", { class: "empty" }, "The server's metrics cannot be read."));
    return;
  }
  const now = { at: Date.now(), samples: parseMetrics(text) };
  const previous = ops.metrics;
  ops.metrics = { ...now, history: previous ? previous.history : { delivered: [], events: [], backlog: [] } };
  const history = ops.metrics.history;
  const backlog = sum(now.samples, "switchboard_outbox_deliveries", (labels) => labels.state === "due" || labels.state === "waiting");
  const dead = sum(now.samples, "switchboard_outbox_deliveries", (labels) => labels.state === "dead");
  const held = sum(now.samples, "switchboard_outbox_deliveries", (labels) => labels.state === "held");
  let delivered = null; let events = null; let latency = null;
  if (previous) {
    const seconds = (now.at - previous.at) / 1000;
    delivered = (sum(now.samples, "switchboard_delivery_attempts_total", (labels) => labels.outcome === "delivered")
      - sum(previous.samples, "switchboard_delivery_attempts_total", (labels) => labels.outcome === "delivered")) / seconds;
    events = (sum(now.samples, "switchboard_events_created_total") - sum(previous.samples, "switchboard_events_created_total")) / seconds;
    latency = p99(previous.samples, now.samples, "switchboard_delivery_latency_seconds");
    history.delivered.push(Math.max(0, delivered));
    history.events.push(Math.max(0, events));
  }
  history.backlog.push(backlog);
  for (const series of Object.values(history)) while (series.length > 60) series.shift();
  const card = (label, value, series, id) => h("div", { class: "metric", id },
    h("div", { class: "hint" }, label), h("div", { class: "value" }, value), series ? sparkline(series) : null);
  panel.replaceChildren(
    card("Delivered per second", delivered === null ? "…" : delivered.toFixed(1), history.delivered, "metric-delivered"),
    card("Events per second", events === null ? "…" : events.toFixed(1), history.events, "metric-events"),
    card("Delivery latency p99 (last 2 s)", latency === null ? "—" : latency === Infinity ? "> 10 s" : `≤ ${latency * 1000} ms`, null, "metric-latency"),
    card("Backlog (due and waiting)", String(backlog), history.backlog, "metric-backlog"),
    card("Dead letters", String(dead), null, "metric-dead"),
    card("Held (paused or disabled)", String(held), null, "metric-held"));
}

function sparkline(series) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 60 32");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const top = Math.max(1, ...series);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", series.map((value, index) => `${index + 60 - series.length},${31 - (value / top) * 30}`).join(" "));
  svg.append(line);
  return svg;
}
