/*!
 * umetrics.js: the browser client of flask-umetrics. Plain ES2017 in one IIFE, no build step.
 *
 * Load it with the Jinja helper {{ umetrics_snippet() }}: it writes a stub that records calls,
 * the options as JSON, and <script async src="{prefix}/static/umetrics.js">. Calls made before
 * the script has loaded, umetrics("track", "x", {...}) or umetrics.push(["track", "x", {...}]),
 * are replayed once it has: init, identify, reset and setConsent before the first page view,
 * the others after it, each group in order.
 *
 * API (window.umetrics; each method is also a command name for umetrics(name, ...args)):
 *   track(event, properties?)      queue an event; queued events go out in batches
 *   page(properties?)              a "$pageview" with $pathname, $current_url, $referrer, $title,
 *                                  utm_* and the screen size; sent on load and on
 *                                  history.pushState / replaceState / popstate (autoPageviews)
 *   identify(distinctId, traits?)  this visitor is a known user: later events carry the id and the
 *                                  server merges the anonymous id's history into it
 *   reset()                        forget the user (at logout): new anonymous id and session
 *   getVariant(key, callback?)     Promise of a flag's variant (GET {api}/api/flags, kept in memory)
 *   isEnabled(key, callback?)      Promise of whether a flag is on
 *   getValue(key, fallback, cb?)   Promise of a feature's value (fallback for an unknown key)
 *   setConsent(bool, callback?)    POST {api}/api/consent; true: keep ids in localStorage and send
 *                                  what is queued; false: drop the queue and clear the storage
 *   flush()                        send everything queued now (Promise)
 *   init(options)                  change options (before anything is sent)
 * Elements with data-umetrics-event="name" track "name" when clicked (forms: when submitted),
 * with their other data-umetrics-* attributes as properties (data-umetrics-plan -> plan).
 *
 * Options (written by the snippet): api ("/umetrics"), writeKey, scopeId, consent (the server's
 * view of this visitor: true / false / null), requireConsent (true), trackBeforeConsent (false),
 * respectDnt (true), autoPageviews (true), trackClicks (true), sessionTimeout (1800 s),
 * flushInterval (1000 ms), batchSize (20), maxQueue (500), maxRetries (5), identify (a known user
 * id to identify on load), traits, debug (false).
 *
 * Privacy. With Do-Not-Track or Global Privacy Control on (unless respectDnt is false) nothing is
 * ever sent or stored. Until consent is given nothing is written to cookies or storage: the
 * anonymous id, session and queue live in memory; events are held there (lost on leaving the
 * page) and sent once consent is given, or sent at once when trackBeforeConsent is true (a new
 * anonymous id per page load). After a refusal nothing is sent. Events carry a uuid, so a retried
 * or re-sent batch is stored once; sessions end after sessionTimeout seconds without an event,
 * as on the server.
 */
(function (window, document) {
  "use strict";
  const stub = window.umetrics;
  if (stub && stub.loaded) return;
  const nav = window.navigator;
  const STORE = "umetrics";
  const UTM = ["utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"];
  const opts = {
    api: "/umetrics", writeKey: null, scopeId: null, consent: null, requireConsent: true,
    trackBeforeConsent: false, respectDnt: true, autoPageviews: true, trackClicks: true,
    sessionTimeout: 1800, flushInterval: 1000, batchSize: 20, maxQueue: 500, maxRetries: 5,
    identify: null, traits: null, debug: false,
  };
  Object.assign(opts, (stub && stub.config) || {});

  const log = (...args) => { if (opts.debug) console.log("[umetrics]", ...args); };

  function uuid() {
    const crypto = window.crypto;
    if (crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = new Uint8Array(16);
    if (crypto && crypto.getRandomValues) crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 15) | 64;
    b[8] = (b[8] & 63) | 128;
    const h = Array.from(b, (x) => (x + 256).toString(16).slice(1)).join("");
    return [h.slice(0, 8), h.slice(8, 12), h.slice(12, 16), h.slice(16, 20), h.slice(20)].join("-");
  }

  // -- consent and storage ------------------------------------------------------------------

  const optedOut = () => opts.respectDnt && (nav.doNotTrack === "1" || window.doNotTrack === "1" ||
    nav.globalPrivacyControl === true);
  let consent = null;
  const undecidedOk = (flag) => consent === null && (!opts.requireConsent || flag);
  /** May events leave the browser now? */
  const allowed = () => !optedOut() && (consent === true || undecidedOk(opts.trackBeforeConsent));
  /** May ids be kept in localStorage? */
  const persistent = () => !optedOut() && (consent === true || undecidedOk(false));

  function storage() {
    try { return window.localStorage; } catch (e) { return null; }
  }
  function loadStore() {
    try {
      const raw = storage() && storage().getItem(STORE);
      return raw ? JSON.parse(raw) : null;
    } catch (e) { return null; }
  }
  function clearStore() {
    try { if (storage() && storage().getItem(STORE) !== null) storage().removeItem(STORE); } catch (e) { /* none */ }
  }

  let ids = { a: null, d: null, s: null, t: 0 };
  function save() {
    if (!persistent()) return;
    try {
      storage().setItem(STORE, JSON.stringify(Object.assign({ c: consent === true ? 1 : 0 }, ids)));
    } catch (e) { log("storage", e); }
  }

  /** The session id, renewed after sessionTimeout seconds without an event. */
  function session() {
    const now = Date.now();
    if (!ids.s || now - ids.t > opts.sessionTimeout * 1000) ids.s = uuid();
    ids.t = now;
    save();
    return ids.s;
  }

  // -- sending --------------------------------------------------------------------------------

  let queue = [];
  let identifies = [];
  let sending = null;
  let inflight = null;
  let flushTimer = null;
  let retryTimer = null;
  let attempts = 0;

  const withKey = (body) => Object.assign(
    { api_key: opts.writeKey }, opts.scopeId ? { scope_id: opts.scopeId } : {}, body);

  // JSON, so the server knows this is no cross-site form post; with credentials, so the consent
  // cookie also reaches an API on another origin the server allows (UMETRICS_ALLOWED_ORIGINS).
  function post(path, body, keepalive) {
    return window.fetch(opts.api + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "include",
      keepalive: !!keepalive,
    });
  }

  function schedule(ms) {
    if (!allowed() || inflight || retryTimer || (flushTimer && ms > 0)) return;
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => { flushTimer = null; flush(); }, ms);
  }

  /** Send the next unit (one identify, or one batch of events); resolves when it is done. */
  function flush() {
    if (inflight) return inflight;
    if (!allowed() || retryTimer || (!queue.length && !identifies.length)) return Promise.resolve();
    clearTimeout(flushTimer);
    flushTimer = null;
    const path = identifies.length ? "/api/identify" : "/api/events";
    const items = identifies.length ? identifies.splice(0, 1) : queue.splice(0, opts.batchSize);
    const body = path === "/api/identify" ? items[0] : { events: items };
    sending = { path, items };
    inflight = post(path, withKey(body)).then((res) => {
      if (res.status === 429 || res.status >= 500) throw res;
      if (!res.ok) log("dropped", path, res.status); // a client error does not get better
      attempts = 0;
    }).then(() => {
      inflight = sending = null;
      if (queue.length || identifies.length) schedule(0);
    }, (error) => {
      inflight = sending = null;
      retry(path, items, error);
    });
    return inflight;
  }

  /** Put a failed unit back and try again after an exponential backoff with jitter. */
  function retry(path, items, error) {
    attempts += 1;
    if (attempts > opts.maxRetries) {
      log("gave up", path, items.length);
      attempts = 0;
      schedule(0);
      return;
    }
    (path === "/api/identify" ? identifies : queue).unshift(...items);
    trim();
    let delay = Math.min(30000, 1000 * 2 ** (attempts - 1)) * (0.5 + Math.random() / 2);
    const after = error && error.headers ? Number(error.headers.get("Retry-After")) : 0;
    if (after > 0) delay = Math.max(delay, Math.min(after, 300) * 1000);
    log("retry", path, Math.round(delay));
    retryTimer = setTimeout(() => { retryTimer = null; flush(); }, delay);
  }

  function trim() {
    if (queue.length > opts.maxQueue) queue.splice(0, queue.length - opts.maxQueue);
  }

  /** Flush until nothing is queued (or a retry is waiting). */
  async function drain() {
    for (let i = 0; i < 1000 && allowed() && !retryTimer && (queue.length || identifies.length || inflight); i++) {
      await flush();
    }
  }

  // A beacon is text/plain (no preflight) and carries the write key in its body. Without a key
  // the host's authorizer decides from cookies, and the server takes that only as JSON: then a
  // keepalive fetch, which outlives the page as a beacon does.
  function beacon(path, body) {
    if (!opts.writeKey) {
      post(path, withKey(body), true).catch(() => {});
      return;
    }
    const data = JSON.stringify(withKey(body));
    const blob = new window.Blob([data], { type: "text/plain;charset=UTF-8" });
    if (nav.sendBeacon && nav.sendBeacon(opts.api + path, blob)) return;
    window.fetch(opts.api + path, { method: "POST", body: data, keepalive: true }).catch(() => {});
  }

  /** The page is going away (or hidden): hand everything pending to sendBeacon. */
  function onHide() {
    if (!allowed()) return;
    clearTimeout(flushTimer);
    clearTimeout(retryTimer);
    flushTimer = retryTimer = null;
    attempts = 0;
    const pending = sending ? [sending] : []; // in flight: may arrive twice, the uuid dedups
    const ident = pending.filter((s) => s.path === "/api/identify").map((s) => s.items[0]);
    ident.concat(identifies.splice(0)).forEach((body) => beacon("/api/identify", body));
    const events = pending.filter((s) => s.path === "/api/events").map((s) => s.items)
      .concat([queue.splice(0)]).reduce((all, some) => all.concat(some), []);
    for (let i = 0; i < events.length; i += opts.batchSize) {
      beacon("/api/events", { events: events.slice(i, i + opts.batchSize) });
    }
  }

  // -- the API --------------------------------------------------------------------------------

  /** gtag.js's "_ga" cookie (set only after analytics consent), so GA4 forwarding joins the
   * browser's GA4 user; the server keeps it as $ga_client_id and sends it nowhere else. */
  function gaCookie() {
    const found = (document.cookie || "").split(/;\s*/).filter((c) => c.indexOf("_ga=") === 0)[0];
    return found ? decodeURIComponent(found.slice(4)) : null;
  }

  function track(event, properties) {
    if (typeof event !== "string" || !event || consent === false || optedOut()) return;
    const props = Object.assign({}, properties || {});
    const ga = gaCookie();
    if (ga && !("$ga_client_id" in props)) props.$ga_client_id = ga;
    queue.push({
      event: event,
      distinct_id: ids.d || ids.a,
      properties: props,
      timestamp: new Date().toISOString(),
      uuid: uuid(),
      session_id: session(),
    });
    trim();
    schedule(queue.length >= opts.batchSize ? 0 : opts.flushInterval);
  }

  let lastUrl = null;
  const currentUrl = () => window.location.href.split("#")[0];

  function page(properties) {
    const loc = window.location;
    const props = {
      $pathname: loc.pathname,
      $current_url: currentUrl(),
      $title: document.title,
      $screen_width: window.screen.width,
      $screen_height: window.screen.height,
    };
    const referrer = lastUrl === null ? document.referrer : lastUrl;
    if (referrer) props.$referrer = referrer;
    new URLSearchParams(loc.search).forEach((value, key) => {
      if (UTM.indexOf(key) >= 0) props[key] = value;
    });
    lastUrl = currentUrl();
    track("$pageview", Object.assign(props, properties || {}));
  }

  function urlChanged() {
    if (opts.autoPageviews && currentUrl() !== lastUrl) page();
  }

  function patchHistory(name) {
    const original = window.history[name];
    if (typeof original !== "function") return;
    window.history[name] = function () {
      const result = original.apply(this, arguments);
      urlChanged();
      return result;
    };
  }

  function identify(distinctId, traits) {
    if (distinctId === null || distinctId === undefined || distinctId === "") return;
    if (consent === false || optedOut()) return;
    const id = String(distinctId);
    const known = ids.d;
    if (known === id && !traits) return;
    ids.d = id;
    save();
    // Another user on this browser: never merge two users' histories.
    identifies.push({ distinct_id: id, anon_id: known && known !== id ? null : ids.a, traits: traits || null });
    schedule(0);
  }

  function reset() {
    ids = { a: "anon-" + uuid(), d: null, s: null, t: 0 };
    flags = {};
    save();
  }

  let flags = {};
  let wanted = null;
  function fetchFlags() {
    const pending = wanted;
    wanted = null;
    const keys = Object.keys(pending);
    let url = opts.api + "/api/flags?keys=" + keys.map(encodeURIComponent).join(",");
    if (opts.scopeId) url += "&scope_id=" + encodeURIComponent(opts.scopeId);
    // QA: the page's ?umetrics_force=key:variant reaches the server (which honours it only
    // with UMETRICS_ALLOW_URL_FORCE).
    const force = new URLSearchParams(window.location.search).get("umetrics_force");
    if (force) url += "&umetrics_force=" + encodeURIComponent(force);
    window.fetch(url, { credentials: "include" })
      .then((res) => (res.ok ? res.json() : {}))
      .catch(() => ({}))
      .then((body) => {
        keys.forEach((key) => {
          const value = (body.flags || {})[key] || null;
          if (!value) delete flags[key]; // ask again next time
          pending[key](value);
        });
      });
  }
  function flag(key) {
    key = String(key);
    if (!flags[key]) {
      if (!wanted) { wanted = {}; setTimeout(fetchFlags, 0); }
      flags[key] = new Promise((resolve) => { wanted[key] = resolve; });
    }
    return flags[key];
  }
  function callback(promise, fn) {
    if (typeof fn === "function") promise.then(fn);
    return promise;
  }
  const getVariant = (key, fn) => callback(flag(key).then((f) => (f ? f.variant : null)), fn);
  const isEnabled = (key, fn) => callback(flag(key).then((f) => !!(f && f.enabled)), fn);
  const getValue = (key, fallback, fn) =>
    callback(flag(key).then((f) => (f && f.variant !== null ? f.value : fallback)), fn);

  // The server's anonymous id (its consent cookie's, which experiments bucket by) replaces an
  // anonymous one made here, so exposures and events are one person before any sign-up.
  function adopt(anonymousId) {
    if (typeof anonymousId !== "string" || !anonymousId || ids.d || ids.a === anonymousId) return;
    const old = ids.a;
    queue.forEach((e) => { if (e.distinct_id === old) e.distinct_id = anonymousId; });
    ids.a = anonymousId;
    save();
  }

  function setConsent(value, fn) {
    const given = value === true;
    flags = {};
    if (!given) {
      consent = false;
      queue = [];
      identifies = [];
      clearStore();
    }
    // On consent nothing is sent until the server answered: its anonymous id comes first.
    const answer = post("/api/consent", Object.assign(
      opts.scopeId ? { scope_id: opts.scopeId } : {}, { consent: given }))
      .then((res) => res.json())
      .catch(() => ({ consent: given }))
      .then((body) => {
        if (given) {
          consent = true;
          adopt(body && body.anonymous_id);
          save();
        }
        return drain().then(() => body);
      });
    return callback(answer, fn);
  }

  const api = {
    track, page, identify, reset, getVariant, isEnabled, getValue, setConsent, flush: drain,
    init: (options) => { Object.assign(opts, options || {}); },
  };
  function run(command) {
    const method = command && api[command[0]];
    if (typeof method !== "function") return log("unknown command", command && command[0]);
    try {
      return method.apply(null, Array.prototype.slice.call(command, 1));
    } catch (error) {
      log("error in", command[0], error);
    }
  }
  const umetrics = function () { return run(arguments); };
  Object.assign(umetrics, api, { push: run, loaded: true, config: opts });

  // -- start ----------------------------------------------------------------------------------

  const recorded = (Array.isArray(stub) ? Array.from(stub) : [])
    .concat(stub && stub.q ? Array.from(stub.q) : []);
  window.umetrics = umetrics;
  // Queued calls that set who and what is allowed apply before the first page view; the rest
  // (track, page, flags) follow it, in the order they were made.
  const early = (c) => ["init", "identify", "reset", "setConsent"].indexOf(c[0]) >= 0;
  recorded.filter((c) => c[0] === "init").forEach(run);

  const stored = optedOut() ? null : loadStore();
  consent = typeof opts.consent === "boolean" ? opts.consent : (stored && stored.c === 1 ? true : null);
  if (!persistent()) clearStore(); // consent withdrawn or opted out: leave nothing behind
  else if (stored && stored.a) ids = { a: stored.a, d: stored.d || null, s: stored.s || null, t: stored.t || 0 };
  if (!ids.a) ids.a = opts.anonymousId || "anon-" + uuid();
  else if (!stored || !stored.a) adopt(opts.anonymousId);
  save();

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") onHide();
  });
  window.addEventListener("pagehide", onHide);
  const tracked = (el) => {
    const props = {};
    Array.from(el.attributes).forEach((attr) => {
      if (attr.name.indexOf("data-umetrics-") === 0 && attr.name !== "data-umetrics-event") {
        props[attr.name.slice(14).replace(/-/g, "_")] = attr.value;
      }
    });
    track(el.getAttribute("data-umetrics-event"), props);
  };
  document.addEventListener("click", (e) => {
    const el = opts.trackClicks && e.target && e.target.closest && e.target.closest("[data-umetrics-event]");
    if (el && el.tagName !== "FORM") tracked(el);
  }, true);
  document.addEventListener("submit", (e) => {
    const form = e.target;
    if (opts.trackClicks && form && form.getAttribute && form.getAttribute("data-umetrics-event")) tracked(form);
  }, true);

  if (opts.identify !== null && opts.identify !== undefined) identify(opts.identify, opts.traits);
  recorded.filter((c) => early(c) && c[0] !== "init").forEach(run);
  if (opts.autoPageviews) {
    patchHistory("pushState");
    patchHistory("replaceState");
    window.addEventListener("popstate", urlChanged);
    page();
  }
  recorded.filter((c) => !early(c)).forEach(run);
})(window, document);
