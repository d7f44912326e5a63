/* Funnelcake storefront snippet, the part every page view runs: visitor id, storage, consent,
   the event queue, decide, SPA navigation, triggers. The popup itself is the renderer
   (snippet/render.js), fetched once decide offers one. Wire contract: docs/wire-contract.md.
   static/widget.js is built from this file by snippet/build.py: edit here, then build. */
(function () {
  'use strict';
  var d = document, w = window, noop = function () {};
  var script = d.currentScript || d.querySelector('script[data-site][src*="widget.js"]');
  if (!script || (w.funnelcake && w.funnelcake.loaded)) return;
  function data(name) { return script.getAttribute('data-' + name); }
  // data-api, else this file's origin
  var base = (data('api') || script.src.replace(/\/static\/widget\.js.*$/, '')).replace(/\/$/, '') +
    '/api/v1/sites/' + data('site') + '/';
  var locale = data('locale') || navigator.language || 'en';
  var preview = data('preview');
  var debug = /[?&]funnelcake_debug=1/.test(location.search);
  var consented = data('consent') != 'required';
  var mem = {}, waiting = [], pending = [], offers = [], tabs = [], identified = Promise.resolve();
  var visitor, pageViews, cart, open, shown, wanted, seq = 0, where, renderer, chunk, queued, linking;

  function log() {
    if (debug) console.info.apply(console, ['[funnelcake]'].concat([].slice.call(arguments)));
  }
  function safe(fn) {
    return function () { try { return fn.apply(this, arguments); } catch (e) { log('error', e); } };
  }

  // Blocked or full storage falls back to memory.
  function get(key) {
    if (key in mem || preview) return mem[key];
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }
  function set(key, value) {
    if (!consented) return;
    mem[key] = value;
    if (!preview) try { localStorage.setItem(key, value); delete mem[key]; } catch (e) { /* kept in memory */ }
  }
  function forget(key) {
    delete mem[key];
    try { localStorage.removeItem(key); } catch (e) { /* blocked */ }
  }
  function uuid() {
    return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  }
  // JSON bytes as the server counts them.
  function size(json) { return new Blob([json]).size; } // bytes as sent (UTF-8)
  function post(path, body, keepalive) {
    // A string body goes as text/plain;charset=UTF-8: a simple request, no CORS preflight.
    return fetch(base + path, {method: 'POST', keepalive: !!keepalive, body: JSON.stringify(body)});
  }

  // Events: a stored queue of {n: tries, e: event}; the server ignores a resent id.
  function queue() {
    try { return JSON.parse(get('fc_q')).filter(function (x) { return x && x.e; }); } catch (e) { return []; }
  }
  function save(q) { set('fc_q', JSON.stringify(q.slice(-1000))); }
  function track(type, offer, info) {
    if (preview || !consented) return;
    var event = {id: uuid(), type: type, visitor_id: visitor, campaign_id: offer ? offer.campaign_id : null,
      variant_id: offer ? offer.variant_id : null, ts: new Date().toISOString(), data: info || {}};
    if (size(JSON.stringify(event)) > 30000) return log('event too large', event);
    var q = queue();
    q.push({n: 0, e: event});
    save(q);
    flush();
  }
  function batch(q) {
    var events = [], bytes = 20;
    for (var i = 0; i < q.length && events.length < 100; i++) {
      bytes += size(JSON.stringify(q[i].e)) + 1;
      if (bytes > 60000) break;
      events.push(q[i].e);
    }
    return events;
  }
  function settle(events, failed) {
    var sent = {};
    events.forEach(function (e) { sent[e.id] = 1; });
    save(queue().filter(function (x) { return !sent[x.e.id] || (failed && ++x.n < 10); }));
  }
  var sending, failures = 0, timer;
  function flush() {
    if (sending || timer || preview || !consented) return;
    var events = batch(queue());
    if (!events.length) return;
    sending = 1;
    post('events', {events: events}, 1).then(function (r) {
      var failed = r.status >= 500 || r.status == 429;
      sending = 0;
      settle(events, failed);
      if (!failed) failures = 0;
      failed ? backoff(r.headers.get('Retry-After')) : flush();
    }, function () {
      sending = 0;
      settle(events, 1);
      backoff();
    })['catch'](noop);
  }
  function backoff(retryAfter) {
    var delay = Math.min(60000, 1000 * Math.pow(2, failures++)) * (0.5 + Math.random());
    timer = setTimeout(safe(function () { timer = 0; flush(); }), Math.max(delay, 1000 * retryAfter || 0));
  }
  // On leaving; the events stay queued until a fetch confirms them.
  function beacon() {
    if (preview || !consented || !navigator.sendBeacon) return;
    var q = queue(), events;
    while ((events = batch(q)).length && navigator.sendBeacon(base + 'events',
      JSON.stringify({events: events}))) q = q.slice(events.length);
  }

  function decide() {
    var mine = ++seq;
    identified.then(function () {
      return post('decide', {visitor_id: visitor, url: location.href.slice(0, 4096),
        referrer: d.referrer.slice(0, 4096), page_views: pageViews, cart: cart, locale: locale, debug: debug,
        device: innerWidth < 768 ? 'mobile' : 'desktop'});
    }).then(function (r) { return r.json(); }).then(safe(function (body) {
      if (mine != seq) return; // stale
      (body.skipped || []).forEach(function (s) { log('campaign ' + s.campaign_id + ' not shown: ' + s.reason); });
      offers = body.campaigns || [];
      tabs = body.teasers || []; // closed popups shown as a tab only
      linking = body.link_cart; // the site links orders to visitors through the store's cart
      if (offers.length || tabs.length || linking) fetchRenderer(); // before any trigger fires
      offers.forEach(arm);
      tease();
      if (wanted) api.show(wanted);
    }))['catch'](function (e) { log('decide failed', e); });
  }

  function arm(offer) {
    var tr = offer.trigger || {}, type = tr.type, id = offer.campaign_id, clock;
    log('campaign ' + id + ' eligible', tr);
    function fire() { render(offer); }
    function on(target, name, handler) {
      handler = safe(handler);
      target.addEventListener(name, handler, {passive: true});
      pending.push(function () { target.removeEventListener(name, handler); });
    }
    function after(seconds) {
      clearTimeout(clock);
      clock = setTimeout(safe(fire), seconds * 1000);
    }
    pending.push(function () { clearTimeout(clock); });
    if (type == 'delay') after(tr.seconds || 0);
    else if (type == 'inactivity') {
      after(tr.seconds);
      ['mousemove', 'keydown', 'scroll', 'touchstart', 'click'].forEach(function (name) {
        on(d, name, function () { after(tr.seconds); });
      });
    } else if (type == 'scroll') on(w, 'scroll', function () {
      var root = d.documentElement;
      if ((root.scrollTop + innerHeight) / root.scrollHeight * 100 >= tr.percent) fire();
    });
    else if (type == 'exit_intent') {
      on(d, 'mouseout', function (e) { if (!e.relatedTarget && e.clientY <= 0) fire(); });
      if (matchMedia('(pointer:coarse)').matches) touchExit(on, fire);
    }
    else if (type == 'page_views') pageViews >= tr.count && fire();
    else if (type != 'manual') fire();
  }
  // Exit intent on phones: a fast scroll up near the top, the tab hidden and shown again, and the
  // back gesture, caught by one history entry pushed at the first tap (an entry pushed without
  // a tap is skipped by Chrome's back button). That entry's back shows the popup; the next back
  // really goes back. It carries the page's state and the same URL, so SPA routers see no change.
  function touchExit(on, fire) {
    var y = scrollY, at = Date.now(), away, pushed;
    on(w, 'scroll', function () {
      var now = Date.now();
      if (scrollY < innerHeight && (y - scrollY) / (now - at + 1) > 1) fire();
      y = scrollY;
      at = now;
    });
    on(d, 'visibilitychange', function () { d.visibilityState == 'hidden' ? away = 1 : away && fire(); });
    on(d, 'touchend', function () { pushed = pushed || !history.pushState(history.state, ''); });
    on(w, 'popstate', function () { pushed && fire(); });
  }
  function disarm() {
    pending.forEach(function (cancel) { cancel(); });
    pending = [];
  }

  // SPA navigation: a new page view.
  var navigated = safe(function () {
    var now = location.pathname + location.search;
    if (now == where || !consented) return;
    where = now;
    disarm();
    if (!open) shown = 0;
    set('fc_pv', String(++pageViews));
    decide();
  });

  // The renderer sits beside this file (same folder, a CDN's too) under a name carrying its
  // content hash, so it may be cached for good; it hands itself over through its script element.
  function fetchRenderer() {
    if (chunk) return;
    chunk = d.createElement('script');
    chunk.src = new URL('RENDERER_FILE', script.src).href;
    chunk.nonce = script.nonce || '';
    chunk.funnelcake = function (draw) {
      renderer = draw;
      if (queued) popup(queued);
      tease();
    };
    chunk.onerror = function () { // this page view goes without; the next one tries again
      chunk = open = 0;
      log('renderer not loaded');
    };
    d.head.appendChild(chunk);
  }

  function render(offer, manual) {
    fetchRenderer();
    if (!d.body) return d.addEventListener('DOMContentLoaded', safe(function () { render(offer, manual); }));
    if (open || (shown && !manual)) return log('one popup per page');
    shown = open = 1;
    disarm();
    log('campaign ' + offer.campaign_id + ' shown');
    renderer ? popup(offer) : queued = offer;
  }
  // A popup, or with tab its teaser's tab, which the next page view or popup removes.
  function popup(offer, tab) {
    if (!tab) queued = 0;
    return renderer(offer, {track: track, post: post, safe: safe, locale: locale, visitor: visitor, preview: preview,
      tab: tab, show: function () { render(offer, 1); },
      closed: function (teaser) { open = 0; if (teaser) pending.push(popup(offer, 1)); }});
  }
  // After decide and once the renderer is here: the teasers' tabs, and the cart link.
  function tease() {
    if (renderer) tabs.forEach(function (offer) { pending.push(popup(offer, 1)); });
    if (renderer && linking) renderer.link(linking, visitor, get, set);
  }

  var api = {
    consent: function (yes) {
      if (!yes) {
        consented = false;
        disarm();
        ['fc_vid', 'fc_pv', 'fc_q', 'fc_cart'].forEach(forget);
        d.cookie = 'funnelcake_visitor=;path=/;max-age=0'; // the cart link's (render.js)
      } else if (!consented) {
        consented = true;
        start();
      }
    },
    identify: function (who) {
      who = who || {};
      identified = post('identify', {visitor_id: visitor, email: who.email, email_consent: who.emailConsent,
        customer_id: who.customerId == null ? undefined : String(who.customerId),
        customer_signature: who.customerSignature, attributes: who.attributes}, 1).then(noop, noop);
    },
    cart: function (c) {
      cart = c && {value: +c.value || 0, items: (Array.isArray(c.items) ? c.items.length : +c.items) || 0};
    },
    track: function (name, props) { track('convert', null, {name: String(name), props: props || {}}); },
    show: function (id) {
      wanted = id;
      offers.forEach(function (o) {
        if (o.campaign_id == id) {
          wanted = 0;
          render(o, 1);
        }
      });
    },
    reset: function () { set('fc_vid', visitor = uuid()); }
  };
  function call(args) {
    if (!consented && args[0] != 'consent') return waiting.push(args);
    if (api[args[0]]) safe(api[args[0]]).apply(null, [].slice.call(args, 1));
  }
  function start() {
    visitor = get('fc_vid') || uuid();
    set('fc_vid', visitor);
    pageViews = (parseInt(get('fc_pv'), 10) || 0) + 1;
    set('fc_pv', String(pageViews));
    where = location.pathname + location.search;
    var calls = waiting;
    waiting = [];
    calls.forEach(call);
    decide();
    flush();
  }

  try {
    if (preview) {
      return render(JSON.parse(d.getElementById(preview).textContent), 1); // no decide, events, storage
    }
    var early = (w.funnelcake && w.funnelcake.q) || [];
    w.funnelcake = function () { call(arguments); };
    w.funnelcake.loaded = 1;
    ['pushState', 'replaceState'].forEach(function (name) {
      var original = history[name];
      history[name] = function () {
        var result = original.apply(this, arguments);
        navigated();
        return result;
      };
    });
    addEventListener('popstate', navigated);
    addEventListener('pagehide', safe(beacon));
    d.addEventListener('visibilitychange', safe(function () { if (d.visibilityState == 'hidden') beacon(); }));
    if (consented) {
      waiting = [].slice.call(early);
      start();
    } else {
      log('waiting for consent');
      [].forEach.call(early, call);
    }
  } catch (e) {
    log('error', e);
  }
})();
