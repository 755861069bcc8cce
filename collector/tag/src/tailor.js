/*! Tailor tag | Apache-2.0 | https://github.com/tailor-crm/tailor */
// One <script src="https://collector/tag.js" data-site="shop" async></script> line: page views, marked
// clicks, dwell, ids, e-commerce calls, offer slots. See docs/tag.md. No dependencies; kept small
// (the build checks it stays under 4 KB gzipped).
(function (w, d, n) {
  var script = d.currentScript || d.querySelector("script[data-site]") || {};
  var cfg = script.dataset || {};
  var base = cfg.endpoint || (script.src ? new URL(script.src).origin : location.origin);
  var site = cfg.site;
  var off = cfg.respectDnt == "true" && (n.doNotTrack == "1" || w.doNotTrack == "1" || n.globalPrivacyControl);
  var consent = cfg.consent != "pending";
  var pingEvery = (+cfg.ping || 10) * 1e3;
  var SESSION_MS = 18e5; // 30 minutes of inactivity ends a session
  var queue = [];
  var mem = {};
  var sending = 0;
  var backoff = 0;
  var timer;

  function uuid() {
    return crypto.randomUUID
      ? crypto.randomUUID()
      : "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
          var r = (Math.random() * 16) | 0;
          return (c == "x" ? r : (r & 3) | 8).toString(16);
        });
  }

  // First-party storage: localStorage plus a cookie, only with consent; otherwise in memory only.
  function get(k) {
    if (!consent) return mem[k];
    try {
      var v = localStorage.getItem("_tailor_" + k);
      if (v) return v;
    } catch (e) {}
    var m = d.cookie.match("(?:^|; )_tailor_" + k + "=([^;]*)");
    return m ? decodeURIComponent(m[1]) : mem[k];
  }
  function set(k, v) {
    mem[k] = v;
    if (!consent) return;
    try {
      localStorage.setItem("_tailor_" + k, v);
    } catch (e) {}
    d.cookie = "_tailor_" + k + "=" + encodeURIComponent(v) + ";path=/;max-age=31536000;SameSite=Lax";
  }
  function forget() {
    ["aid", "sid", "seen", "mid"].forEach(function (k) {
      try {
        localStorage.removeItem("_tailor_" + k);
      } catch (e) {}
      d.cookie = "_tailor_" + k + "=;path=/;max-age=0";
    });
  }

  function anonymousId() {
    var a = get("aid");
    if (!a) set("aid", (a = uuid()));
    return a;
  }
  function sessionId() {
    var s = get("sid");
    var now = Date.now();
    if (!s || now - (+get("seen") || 0) > SESSION_MS) set("sid", (s = uuid()));
    set("seen", "" + now);
    return s;
  }

  function send(type, fields) {
    if (off || !site) return;
    var e = {
      type: type,
      event_id: uuid(),
      site_id: site,
      anonymous_id: anonymousId(),
      session_id: sessionId(),
      timestamp: new Date().toISOString(),
      url: location.href
    };
    var m = get("mid");
    if (m) e.member_id = m;
    for (var k in fields) if (fields[k] != null) e[k] = fields[k];
    queue.push(e);
    if (queue.length >= 20) flush();
    else if (!timer) timer = setTimeout(flush, 1e3);
  }

  function body(batch) {
    var now = new Date().toISOString();
    batch.forEach(function (e) {
      e.sent_at = now;
    });
    return JSON.stringify(batch);
  }

  // text/plain keeps the request "simple" (no CORS preflight); the collector reads JSON regardless.
  function flush(beacon) {
    clearTimeout(timer);
    timer = 0;
    if (!queue.length || (sending && !beacon)) return;
    var batch = queue.splice(0, 20);
    var url = base + "/v1/events";
    if (beacon && n.sendBeacon && n.sendBeacon(url, new Blob([body(batch)], { type: "text/plain" }))) {
      if (queue.length) flush(beacon);
      return;
    }
    sending = 1;
    fetch(url, { method: "POST", body: body(batch), keepalive: true, headers: { "content-type": "text/plain" } })
      .then(function (r) {
        // 4xx other than 429: the collector rejected (and dead-lettered) them; retrying cannot help.
        if (r.status == 429 || r.status >= 500) retry(batch, +r.headers.get("retry-after"));
        else done();
      })
      .catch(function () {
        retry(batch);
      });
  }
  function done() {
    sending = 0;
    backoff = 0;
    if (queue.length) flush();
  }
  // Exponential backoff with jitter; the same event ids go again, so the server counts them once.
  function retry(batch, after) {
    sending = 0;
    queue = batch.concat(queue);
    backoff = Math.min(backoff ? backoff * 2 : 1e3, 6e4);
    timer = setTimeout(flush, after ? after * 1e3 : backoff * (0.5 + Math.random()));
  }

  // Dwell: visible time, reported every `pingEvery` and when the page is hidden.
  var visibleSince = d.hidden ? 0 : Date.now();
  var dwell = 0;
  function ping(final) {
    if (visibleSince) {
      dwell += Date.now() - visibleSince;
      visibleSince = final ? 0 : Date.now();
    }
    if (dwell >= 1e3) send("page_ping", { dwell_ms: Math.round(dwell) });
    dwell = 0;
  }
  setInterval(function () {
    if (!d.hidden) ping();
  }, pingEvery);
  function hide() {
    ping(1);
    flush(1);
  }
  d.addEventListener("visibilitychange", function () {
    if (d.hidden) hide();
    else visibleSince = Date.now();
  });
  w.addEventListener("pagehide", hide);

  function closest(el, attr) {
    return el && el.closest ? el.closest("[" + attr + "]") : null;
  }

  // Clicks on marked elements; inside an offer slot they are offer clicks.
  d.addEventListener(
    "click",
    function (ev) {
      var el = closest(ev.target, "data-tailor-token") || closest(ev.target, "data-tailor-item") || closest(ev.target, "data-tailor-category") || closest(ev.target, "data-tailor-offer");
      if (!el) return;
      var a = el.dataset;
      var slot = closest(el, "data-tailor-slot");
      // A campaign's offer: its token says which campaign and variant; sent at once, the click may leave the page.
      if (slot && a.tailorToken) send("offer_click", { slot: slot.dataset.tailorSlot, token: a.tailorToken }), flush(1);
      else if (slot && a.tailorItem) send("offer_click", { slot: slot.dataset.tailorSlot, item_id: a.tailorItem });
      else send("click", { item_id: a.tailorItem, category: a.tailorCategory, offer_id: a.tailorOffer });
    },
    true
  );

  // Offer slots: filled from the recommender; an impression is sent once the slot is half visible.
  var seen = w.IntersectionObserver
    ? new IntersectionObserver(
        function (entries) {
          entries.forEach(function (en) {
            var el = en.target;
            if (en.isIntersecting && el._tailorShow) {
              el._tailorShow();
              el._tailorShow = 0;
              seen.unobserve(el);
            }
          });
        },
        { threshold: 0.5 }
      )
    : 0;
  // Only links the page may follow: http(s) or the shop's own paths (the server checks this too).
  function link(u) {
    return /^(https?:\/\/|\/)/i.test(u || "") ? u : "#";
  }
  function add(el, tag, text) {
    var c = d.createElement(tag);
    c.textContent = text;
    return el.appendChild(c);
  }
  function fill() {
    d.querySelectorAll("[data-tailor-slot]").forEach(function (el) {
      var a = el.dataset;
      var slot = a.tailorSlot;
      var q = "site=" + encodeURIComponent(site) + "&slot=" + encodeURIComponent(slot) + "&limit=" + (a.tailorLimit || 4);
      // Always the device's id, never the member's: asking by member needs a `serve` key, which a
      // page cannot keep secret. The device is stitched to the member once they log in, so the
      // answer is as personal.
      q += "&anonymous=" + encodeURIComponent(anonymousId());
      if (a.tailorItem) q += "&item=" + encodeURIComponent(a.tailorItem);
      fetch(base + "/v1/recommendations?" + q)
        .then(function (r) {
          return r.json();
        })
        .then(function (res) {
          var items = (res.items || []).map(function (it) {
            return it.item_id;
          });
          // Offers first (title, body, coupon), then items (the catalog's title and url when known).
          // Everything goes in as text, never as markup.
          var offers = res.offers || [];
          var tokens = offers.concat(res.held_back || []).map(function (o) {
            return o.token;
          });
          el.textContent = "";
          offers.forEach(function (o) {
            var l = add(el, "a", "");
            l.href = link(o.url);
            l.title = o.reason || "";
            l.className = "tailor-offer";
            l.dataset.tailorToken = o.token;
            add(l, "b", o.title);
            if (o.body) add(l, "span", " " + o.body);
            if (o.coupon) add(l, "code", " " + o.coupon);
          });
          (res.items || []).forEach(function (it) {
            var l = add(el, "a", it.title || it.item_id);
            l.href = it.url && !a.tailorHref ? link(it.url) : (a.tailorHref || "#{id}").replace("{id}", encodeURIComponent(it.item_id));
            l.title = it.reason || "";
            l.dataset.tailorItem = it.item_id;
          });
          el.dispatchEvent(new CustomEvent("tailor:filled", { detail: res, bubbles: true }));
          // Shown (half visible): the items' impression, and one per offer token, held-back ones
          // included (the page shows nothing for those; they count the campaign's control group).
          if ((items.length || tokens.length) && !off) {
            el._tailorShow = function () {
              if (items.length) send("offer_impression", { slot: slot, item_ids: items });
              tokens.forEach(function (t) {
                send("offer_impression", { slot: slot, token: t });
              });
            };
            if (seen) seen.observe(el);
            else el._tailorShow();
          }
        })
        .catch(function () {});
    });
  }

  var api = {
    identify: function (memberId, traits) {
      set("mid", "" + memberId);
      send("identify", { traits: traits });
    },
    reset: function () {
      forget();
      mem = {};
    },
    viewItem: function (id, category) {
      send("page_view", { item_id: id, category: category, title: d.title });
    },
    addToCart: function (id, o) {
      o = o || {};
      send("add_to_cart", { item_id: id, category: o.category, quantity: o.quantity, price: o.price });
    },
    purchase: function (order) {
      send("purchase", { order: order });
      flush();
    },
    track: function (name, properties) {
      send("custom", { name: name, properties: properties });
    },
    consent: function (yes) {
      var before = { aid: get("aid"), sid: get("sid"), seen: get("seen"), mid: get("mid") };
      consent = !!yes;
      if (consent) {
        for (var k in before) if (before[k]) set(k, before[k]);
      } else forget();
    },
    fill: fill,
    flush: flush,
    push: function (c) {
      api[c[0]].apply(null, [].slice.call(c, 1));
    }
  };

  var pending = w.tailor || [];
  w.tailor = api;
  if (cfg.auto != "false") send("page_view", { referrer: d.referrer || null, title: d.title });
  for (var i = 0; i < pending.length; i++) api.push(pending[i]);
  if (d.readyState == "loading") d.addEventListener("DOMContentLoaded", fill);
  else fill();
})(window, document, navigator);
