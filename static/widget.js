/* Funnelcake storefront snippet: asks decide, shows one survey popup in a Shadow DOM, reports events.
   First version: surveys with delay/immediate/scroll/exit-intent/page-view/manual triggers; the wheel,
   consent mode, SPA navigation and the admin preview hook are still to come (see docs/wire-contract.md). */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || window.__funnelcake) return;
  window.__funnelcake = true;
  var site = script.getAttribute('data-site');
  var base = script.src.replace(/\/static\/widget\.js.*$/, '') + '/api/v1/sites/' + site + '/';
  var locale = script.getAttribute('data-locale') || navigator.language || 'en';
  var mem = {};

  function get(key) { try { return localStorage.getItem(key); } catch (e) { return mem[key] || null; } }
  function set(key, value) { try { localStorage.setItem(key, value); } catch (e) { mem[key] = value; } }
  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx'.replace(/[xy]/g, function (c) {
      var r = Math.random() * 16 | 0; return (c === 'x' ? r : (r & 3 | 8)).toString(16);
    });
  }
  function t(text) {
    if (text == null || typeof text === 'string') return text || '';
    return text[locale] || text[locale.split('-')[0]] || text[Object.keys(text)[0]] || '';
  }

  var visitor = get('fc_vid') || uuid();
  set('fc_vid', visitor);
  var pageViews = (parseInt(get('fc_pv'), 10) || 0) + 1;
  set('fc_pv', String(pageViews));
  var cart = null, shown = false, offers = [], tries = 0;

  function post(endpoint, body, keepalive) {
    return fetch(base + endpoint, {method: 'POST', body: JSON.stringify(body), keepalive: !!keepalive,
      headers: {'Content-Type': 'text/plain;charset=UTF-8'}});
  }

  // Events: queued in storage (at most 1,000, oldest dropped), sent in batches, retried with backoff.
  function queue() { try { return JSON.parse(get('fc_q')) || []; } catch (e) { return []; } }
  function track(type, offer, data) {
    var q = queue();
    q.push({id: uuid(), type: type, visitor_id: visitor, campaign_id: offer ? offer.campaign_id : null,
      variant_id: offer ? offer.variant_id : null, ts: new Date().toISOString(), data: data || {}});
    set('fc_q', JSON.stringify(q.slice(-1000)));
    flush();
  }
  var sending = false;
  function flush(beacon) {
    var q = queue();
    if (!q.length || sending) return;
    var batch = q.slice(0, 100);
    var drop = function () {
      var ids = {}; batch.forEach(function (e) { ids[e.id] = 1; });
      set('fc_q', JSON.stringify(queue().filter(function (e) { return !ids[e.id]; })));
    };
    if (beacon && navigator.sendBeacon) {
      if (navigator.sendBeacon(base + 'events', new Blob([JSON.stringify({events: batch})],
        {type: 'text/plain'}))) drop();
      return;
    }
    sending = true;
    post('events', {events: batch}, true).then(function (r) {
      sending = false;
      if (r.status < 500 && r.status !== 429) { drop(); tries = 0; if (queue().length) flush(); }
      else retry();
    }, function () { sending = false; retry(); });
  }
  function retry() {
    if (++tries > 10) return;
    setTimeout(flush, Math.min(60000, 500 * Math.pow(2, tries)) * (0.5 + Math.random()));
  }
  addEventListener('pagehide', function () { flush(true); });

  var CSS = ':host{all:initial}.o{position:fixed;inset:0;background:rgba(0,0,0,.45);display:flex;' +
    'align-items:center;justify-content:center;z-index:2147483647;font:16px/1.4 system-ui,sans-serif}' +
    '.d{background:#fff;color:#1d1d1f;border-radius:12px;max-width:420px;width:calc(100% - 32px);' +
    'padding:24px;box-shadow:0 10px 40px rgba(0,0,0,.3);position:relative}h2{margin:0 0 12px;' +
    'font-size:20px}.x{position:absolute;top:8px;right:8px;border:0;background:none;font-size:24px;' +
    'cursor:pointer;color:#555}.p{height:4px;background:#eee;border-radius:2px;margin:0 0 16px}' +
    '.p i{display:block;height:100%;background:#c2571a;border-radius:2px}.s{font-size:13px;color:#555}' +
    '.c{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}.c label{flex:1 1 auto;border:1px solid #bbb;' +
    'border-radius:8px;padding:8px 12px;cursor:pointer;text-align:center}.c input{margin-right:6px}' +
    'textarea,input[type=email]{width:100%;box-sizing:border-box;padding:8px;font:inherit}' +
    '.n{display:flex;justify-content:space-between;margin-top:16px}button.b{background:#c2571a;' +
    'color:#fff;border:0;border-radius:8px;padding:10px 18px;font:inherit;cursor:pointer}' +
    'button.g{background:#eee;color:#222}button:focus-visible,label:focus-within{outline:3px solid #1a5fb4}';

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }

  function render(offer) {
    if (shown) return;
    shown = true;
    var steps = offer.content.steps, index = 0, history = [], answers = {};
    var host = el('div', {'data-funnelcake': ''});
    var root = host.attachShadow({mode: 'open'});
    var style = el('style', {}, CSS);
    if (script.nonce) style.nonce = script.nonce;
    root.appendChild(style);
    var overlay = el('div', {'class': 'o'});
    var dialog = el('div', {'class': 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'fc-q'});
    overlay.appendChild(dialog);
    root.appendChild(overlay);
    document.body.appendChild(host);
    var before = document.activeElement, done = false;
    track('impression', offer);

    function close() {
      if (!done) track('close', offer, {step_id: steps[index] && steps[index].id});
      host.remove();
      if (before && before.focus) before.focus();
    }
    dialog.addEventListener('keydown', function (e) {
      if (e.key === 'Escape') close();
      if (e.key !== 'Tab') return;
      var f = dialog.querySelectorAll('button,input,textarea');
      if (!f.length) return;
      var first = f[0], last = f[f.length - 1], active = root.activeElement;
      if (e.shiftKey && active === first) { last.focus(); e.preventDefault(); }
      else if (!e.shiftKey && active === last) { first.focus(); e.preventDefault(); }
    });

    function nextIndex(step, value) {
      var rules = step.next || [];
      for (var i = 0; i < rules.length; i++) {
        var w = rules[i].when, ok = !w;
        var values = [].concat(value);
        if (w && 'equals' in w) ok = values.indexOf(w.equals) >= 0 || String(value) === String(w.equals);
        if (w && w['in']) ok = values.some(function (v) { return w['in'].indexOf(v) >= 0; });
        if (w && 'gte' in w) ok = value >= w.gte;
        if (w && 'lte' in w) ok = value <= w.lte;
        if (ok) {
          if (rules[i].goto === 'end') return steps.length;
          for (var j = 0; j < steps.length; j++) if (steps[j].id === rules[i].goto) return j;
        }
      }
      return index + 1;
    }

    function choices(step) {
      var type = step.type, name = 'fc-' + step.id, box = el('div', {'class': 'c', role: 'group',
        'aria-labelledby': 'fc-q'});
      var items = step.options ? step.options.map(function (o) { return [o.id, t(o.label)]; }) : [];
      if (type === 'scale' || type === 'nps' || type === 'rating') {
        var sc = step.scale || {}, lo = type === 'nps' ? 0 : (sc.min || 1);
        var hi = type === 'nps' ? 10 : (sc.max || 5);
        items = [];
        for (var v = lo; v <= hi; v++) items.push([v, type === 'rating' ? v + '★' : String(v)]);
      }
      items.forEach(function (item) {
        var label = el('label');
        var input = el('input', {type: type === 'multi_choice' ? 'checkbox' : 'radio', name: name});
        input.value = item[0];
        input._v = item[0];
        if ([].concat(answers[step.id]).indexOf(item[0]) >= 0) input.checked = true;
        label.appendChild(input);
        label.appendChild(document.createTextNode(item[1]));
        box.appendChild(label);
      });
      return box;
    }

    function show() {
      dialog.textContent = '';
      var x = el('button', {'class': 'x', 'aria-label': 'Close'}, '×');
      x.onclick = close;
      dialog.appendChild(x);
      if (index >= steps.length) return thanks();
      var step = steps[index];
      track('step', offer, {step_id: step.id});
      if (offer.content.title) dialog.appendChild(el('p', {'class': 's'}, t(offer.content.title)));
      var bar = el('div', {'class': 'p', role: 'progressbar', 'aria-valuemin': '0',
        'aria-valuemax': String(steps.length), 'aria-valuenow': String(index + 1)});
      var fill = el('i');
      fill.style.width = (100 * (index + 1) / steps.length) + '%';
      bar.appendChild(fill);
      dialog.appendChild(el('p', {'class': 's'}, (index + 1) + ' of ' + steps.length));
      dialog.appendChild(bar);
      dialog.appendChild(el('h2', {id: 'fc-q'}, t(step.question)));
      if (step.description) dialog.appendChild(el('p', {}, t(step.description)));
      var field;
      if (step.type === 'text' || step.type === 'email') {
        field = el(step.type === 'text' ? 'textarea' : 'input',
          step.type === 'email' ? {type: 'email', 'aria-labelledby': 'fc-q'} : {'aria-labelledby': 'fc-q'});
        if (step.placeholder) field.placeholder = t(step.placeholder);
        if (answers[step.id]) field.value = answers[step.id];
      } else field = choices(step);
      dialog.appendChild(field);
      var nav = el('div', {'class': 'n'});
      var back = el('button', {'class': 'b g'}, 'Back');
      back.disabled = !history.length;
      back.onclick = function () { index = history.pop(); show(); };
      var next = el('button', {'class': 'b'}, 'Next');
      next.onclick = function () {
        var value;
        if (field.tagName === 'DIV') {
          var picked = [].filter.call(field.querySelectorAll('input'), function (i) { return i.checked; })
            .map(function (i) { return i._v; });
          value = step.type === 'multi_choice' ? picked : picked[0];
          if (value === undefined || (step.type === 'multi_choice' && !picked.length)) value = null;
        } else value = field.value.trim() || null;
        if (value === null && step.required !== false) { field.setAttribute('aria-invalid', 'true'); return; }
        if (step.type === 'email' && value && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(value)) return;
        if (value !== null) { answers[step.id] = value; track('answer', offer, {step_id: step.id, value: value}); }
        history.push(index);
        index = nextIndex(step, value);
        show();
      };
      nav.appendChild(back);
      nav.appendChild(next);
      dialog.appendChild(nav);
      var first = dialog.querySelector('input,textarea');
      (first || next).focus();
    }

    function thanks() {
      done = true;
      track('complete', offer);
      var ty = offer.content.thank_you || {};
      dialog.appendChild(el('h2', {id: 'fc-q', role: 'status'}, t(ty.title) || 'Thank you!'));
      if (ty.message) dialog.appendChild(el('p', {}, t(ty.message)));
      var ok = el('button', {'class': 'b'}, 'Close');
      ok.onclick = close;
      dialog.appendChild(ok);
      ok.focus();
    }
    show();
  }

  function arm(offer) {
    var tr = offer.trigger || {}, fire = function () { render(offer); };
    if (offer.kind !== 'survey') return;
    if (tr.type === 'delay') setTimeout(fire, (tr.seconds || 0) * 1000);
    else if (tr.type === 'scroll') addEventListener('scroll', function on() {
      var h = document.documentElement;
      if ((h.scrollTop + innerHeight) / h.scrollHeight * 100 >= tr.percent) { removeEventListener('scroll', on); fire(); }
    });
    else if (tr.type === 'exit_intent') document.addEventListener('mouseout', function on(e) {
      if (!e.relatedTarget && e.clientY <= 0) { document.removeEventListener('mouseout', on); fire(); }
    });
    else if (tr.type === 'page_views') { if (pageViews >= tr.count) fire(); }
    else if (tr.type !== 'manual') fire();
  }

  var api = {
    cart: function (c) { cart = c; },
    track: function (name, props) { track('convert', null, {name: name, props: props || {}}); },
    show: function (id) { offers.forEach(function (o) { if (o.campaign_id === id) render(o); }); },
    reset: function () { set('fc_vid', uuid()); }
  };
  function call(args) {
    try { if (api[args[0]]) api[args[0]].apply(null, [].slice.call(args, 1)); } catch (e) { /* never into the page */ }
  }
  var pending = (window.funnelcake && window.funnelcake.q) || [];
  window.funnelcake = function () { call(arguments); };
  pending.forEach(call);

  post('decide', {visitor_id: visitor, url: location.href, referrer: document.referrer,
    page_views: pageViews, device: innerWidth < 768 ? 'mobile' : 'desktop', cart: cart || undefined})
    .then(function (r) { return r.ok ? r.json() : {campaigns: []}; })
    .then(function (body) { offers = body.campaigns || []; offers.forEach(arm); })
    ['catch'](function () { /* offline: try again on the next page */ });
  flush();
})();
