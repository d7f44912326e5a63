/* Funnelcake's popup renderer: survey steps, the wheel, styles, focus. The snippet
   (snippet/widget.js) adds it to the page once decide offers a popup and calls it with the offer
   and what it needs of the snippet (track, post, visitor, locale...). Docs: docs/wire-contract.md,
   docs/wheel.md. static/widget-render.<hash>.js is built from this file by snippet/build.py. */
(function () {
  'use strict';
  var d = document, me = d.currentScript, noop = function () {};
  var EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/, INVALID = 'Please enter a valid e-mail address.';
  var SVG = 'http://www.w3.org/2000/svg';
  var io; // the snippet's side, for the popup on screen (there is one at most)
  var shownTab, tabButton, again; // the teaser's tab (one at most), and the offer it reopens

  var CSS = ':host{all:initial}.o{position:fixed;inset:0;background:#0008;display:flex;align-items:center;' +
    'justify-content:center;z-index:2147483647;font:16px/1.4 system-ui,sans-serif}.d{background:#fff;' +
    'color:#222;border-radius:12px;width:calc(100% - 32px);max-width:420px;max-height:calc(100% - 32px);' +
    'overflow:auto;box-sizing:border-box;padding:24px;position:relative}h2{margin:0 28px 12px 0;font-size:20px;' +
    'outline:0}.x{position:absolute;top:8px;right:8px;border:0;background:none;font-size:24px}.s{font-size:13px;' +
    'color:#555}.c{display:flex;flex-wrap:wrap;gap:8px;margin:12px 0}.c label{flex:auto;text-align:center;' +
    'border:1px solid #bbb;border-radius:8px;padding:8px;margin:0;position:relative}.c input{position:absolute;opacity:0}' +
    '.c :has(:checked){background:#b4501a;color:#fff}textarea,input[type=email],.k{display:block;' +
    'width:100%;box-sizing:border-box;padding:8px;font:inherit}.k{font:600 18px monospace;text-align:center}' +
    'label{display:block;margin:8px 0}.r{font-weight:600}.e{color:#b3261e;margin:0}.n{display:flex;flex-wrap:wrap;' +
    'gap:8px;justify-content:space-between;margin-top:16px}button{cursor:pointer}.b{background:#b4501a;color:#fff;' +
    'border:0;border-radius:8px;padding:10px 18px;font:inherit}.g{background:#eee;color:#222}' +
    ':disabled{opacity:.5}svg{display:block;max-width:260px;margin:auto}text{font:600 11px sans-serif;' +
    'fill:#fff;stroke:#000a;stroke-width:2px;paint-order:stroke;pointer-events:none;text-anchor:middle;' +
    'dominant-baseline:central}[aria-invalid]{outline:2px solid #b3261e}' +
    ':focus-visible,.c label:has(:focus-visible){outline:3px solid #1a5fb4}h2:focus{outline:0}' +
    '.t{position:fixed;top:40%;z-index:2147483646;writing-mode:vertical-rl;border:0;background:#b4501a;color:#fff;' +
    'font:600 13px/1.1 system-ui,sans-serif;padding:10px 4px;max-height:40vh;overflow:hidden;white-space:nowrap}' +
    '.r{right:0;border-radius:8px 0 0 8px}.l{left:0;border-radius:0 8px 8px 0;transform:rotate(180deg)}' +
    '@media (prefers-reduced-motion:no-preference){.t{animation:i .4s}}@keyframes i{from{opacity:0}}';

  function safe(fn) { return io.safe(fn); }
  function track(type, offer, info) { io.track(type, offer, info); }
  // A text, plain or {"en": ..., "de": ...}.
  function t(text) {
    var locale = io.locale;
    if (text == null) return '';
    if (typeof text != 'object') return String(text);
    return text[locale] || text[locale.split('-')[0]] || text.en || text[Object.keys(text)[0]] || '';
  }

  function el(tag, attrs, text, ns) {
    var node = ns ? d.createElementNS(ns, tag) : d.createElement(tag);
    for (var k in attrs) node.setAttribute(k, attrs[k]);
    if (text != null) node.textContent = text;
    return node;
  }
  function add(parent, tag, attrs, text, ns) { return parent.appendChild(el(tag, attrs, text, ns)); }
  function choice(parent, type, text) { // an input with its text, in one label
    var label = add(parent, 'label'), input = add(label, 'input', {type: type});
    label.appendChild(d.createTextNode(' ' + text));
    return input;
  }
  function button(parent, text, cls, onclick) {
    var node = add(parent, 'button', {type: 'button', 'class': cls}, text);
    node.onclick = safe(onclick);
    return node;
  }

  // A host element with its Shadow DOM, styled by a constructed sheet (or <style nonce>): no
  // 'unsafe-inline' needed.
  function shadow(tag) {
    var host = d.createElement(tag), root = host.attachShadow({mode: 'open'});
    try {
      if (!root.adoptedStyleSheets) throw 0;
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      var style = el('style', {}, CSS);
      style.nonce = me.nonce || '';
      root.appendChild(style);
    }
    return host;
  }

  // The teaser: a tab at the page's side that reopens the closed popup (as the visitor's own
  // choice: teaser_open, not an impression). Returns what removes it.
  function tab(offer, snippet) {
    var teaser = offer.teaser, host = shadow('funnelcake-teaser');
    if (shownTab) shownTab.remove();
    shownTab = host;
    tabButton = button(host.shadowRoot, t(teaser.text), 't ' + (teaser.side == 'left' ? 'l' : 'r'), function () {
      host.remove();
      track('teaser_open', offer);
      again = offer;
      snippet.show();
    });
    tabButton.setAttribute('aria-haspopup', 'dialog');
    (d.body || d.documentElement).appendChild(host);
    track('teaser_shown', offer);
    return function () { host.remove(); };
  }

  function popup(offer, snippet) {
    io = snippet;
    if (snippet.tab) return tab(offer, snippet);
    var host = shadow('funnelcake-popup'), root = host.shadowRoot;
    var overlay = add(root, 'div', {'class': 'o'});
    var dialog = add(overlay, 'div', {'class': 'd', role: 'dialog', 'aria-modal': 'true', 'aria-labelledby': 'fc-h'});
    var before = d.activeElement;
    var ui = {offer: offer, again: again == offer && offer,
      screen: function () {
        dialog.textContent = '';
        button(dialog, '×', 'x', ui.close).setAttribute('aria-label', 'Close');
        return dialog;
      },
      close: function () {
        track('close', ui.offer, ui.step ? {step_id: ui.step} : {});
        host.remove();
        snippet.closed(offer.teaser && !ui.done); // the loader draws the teaser's tab
        var back = ui.again ? tabButton : before; // reopened from the tab: back to it
        if (back && back.focus) back.focus();
      }};
    overlay.onmousedown = function (e) { if (e.target == overlay) e.preventDefault(); };
    dialog.addEventListener('keydown', safe(function (e) {
      if (e.key == 'Escape') return ui.close();
      if (e.key != 'Tab') return;
      var focusable = [].filter.call(dialog.querySelectorAll('button,input,textarea'), function (x) { return !x.disabled; });
      var first = focusable[0], last = focusable[focusable.length - 1];
      if (root.activeElement == (e.shiftKey ? first : last)) {
        (e.shiftKey ? last : first).focus();
        e.preventDefault();
      }
    }));
    again = 0;
    d.body.appendChild(host);
    (offer.kind == 'wheel' ? wheel : survey)(offer, ui);
  }

  function survey(offer, ui) {
    var c = offer.content, steps = c.steps || [], index = 0, history = [], answers = {}, hidden = {};
    var query = new URLSearchParams(location.search), tag = d.querySelector('script[data-site]');
    // Hidden fields go with every answer: the page URL's query, the snippet tag's data-*
    // (identify's attributes the server adds itself).
    (c.hidden_fields || []).forEach(function (f) {
      var v = f.source == 'query' ? query.get(f.key) : f.source == 'data' && tag && tag.getAttribute('data-' + f.key);
      if (v) hidden[f.name] = v.slice(0, 200);
    });
    if (ui.again != offer) track('impression', offer);
    function bounds(step) {
      var scale = step.scale || {};
      return step.type == 'nps' ? [0, 10] : [scale.min || 1, scale.max || 5];
    }
    // An e-mail link may answer the first questions (?fc_<step id>=<answer>): a valid answer is
    // recorded and the popup opens on the next question.
    function prefilled(step) {
      var raw = query.get('fc_' + step.id), type = step.type, range = bounds(step), n = +raw;
      if (!raw) return null;
      if (type.indexOf('choice') > 0) {
        var ids = raw.split(','), known = step.options.map(function (o) { return o.id; });
        return ids.every(function (x) { return known.indexOf(x) >= 0; }) ? type == 'multi_choice' ? ids : raw : null;
      }
      if (type == 'text' || type == 'email') return type == 'email' && !EMAIL.test(raw) ? null : raw.slice(0, 5000);
      return n % 1 == 0 && n >= range[0] && n <= range[1] ? n : null;
    }
    function go(step, value) {
      if (value !== null) {
        answers[step.id] = value;
        track('answer', offer, {step_id: step.id, value: value, hidden: hidden});
      }
      history.push(index);
      var rule = (step.next || []).filter(function (r) { return matches(r.when, value); })[0];
      index = !rule ? index + 1 : rule.goto == 'end' ? steps.length
        : steps.map(function (s) { return s.id; }).indexOf(rule.goto);
    }
    function matches(when, value) {
      var values = [].concat(value);
      return !when || value !== null && ('equals' in when ? values.indexOf(when.equals) >= 0 || String(value) == when.equals
        : when['in'] ? values.some(function (v) { return when['in'].indexOf(v) >= 0; })
        : 'gte' in when ? value >= when.gte : value <= when.lte);
    }
    function show() {
      var box = ui.screen(), step = steps[index];
      if (!step) return thanks(box);
      var type = step.type, id = step.id, scale = step.scale || {}, field, items = [];
      ui.step = id;
      track('step', offer, {step_id: id});
      if (c.title) add(box, 'p', {'class': 's'}, t(c.title));
      add(box, 'p', {'class': 's'}, 'Question ' + (index + 1) + ' of ' + steps.length);
      // The question takes the focus, so that no answer looks chosen before the visitor chose.
      var heading = add(box, 'h2', {id: 'fc-h', tabindex: '-1'}, t(step.question));
      if (step.description) add(box, 'p', {}, t(step.description));
      if (type == 'text' || type == 'email') {
        field = add(box, type == 'text' ? 'textarea' : 'input', {type: type, 'aria-labelledby': 'fc-h'});
        field.placeholder = t(step.placeholder);
        field.value = answers[id] || '';
      } else {
        field = add(box, 'div', {'class': 'c', role: 'group', 'aria-labelledby': 'fc-h'});
        if (type.indexOf('choice') > 0) items = step.options.map(function (o) { return [o.id, t(o.label)]; });
        else {
          var lo = bounds(step)[0], hi = bounds(step)[1];
          for (var v = lo; v <= hi; v++) items.push([v, v + (type == 'rating' ? '★' : '')]);
          if (scale.min_label) add(box, 'p', {'class': 's'}, lo + ' = ' + t(scale.min_label) + ' · ' + hi + ' = ' + t(scale.max_label));
        }
        items.forEach(function (item) {
          var input = choice(field, type == 'multi_choice' ? 'checkbox' : 'radio', item[1]);
          input.name = id;
          input._v = item[0];
          input.checked = [].concat(answers[id]).indexOf(item[0]) >= 0;
        });
      }
      // Why Next did nothing, announced, until the visitor answers.
      var problem = add(box, 'p', {'class': 'e', id: 'fc-e', 'aria-live': 'polite'});
      field.setAttribute('aria-describedby', 'fc-e');
      field.oninput = function () {
        field.removeAttribute('aria-invalid');
        problem.textContent = '';
      };
      var nav = add(box, 'div', {'class': 'n'});
      button(nav, 'Back', 'b g', function () { index = history.pop(); show(); }).disabled = !history.length;
      button(nav, 'Next', 'b', function () {
        var picked = [].filter.call(field.querySelectorAll('input'), function (i) { return i.checked; })
          .map(function (i) { return i._v; });
        var value = field.value != null ? field.value.trim() : type == 'multi_choice' ? picked : picked[0];
        if (value === undefined || value.length === 0) value = null;
        if (value === null ? step.required !== false : type == 'email' && !EMAIL.test(value)) {
          field.setAttribute('aria-invalid', 'true');
          problem.textContent = value !== null ? INVALID
            : field.value != null ? 'Write an answer to continue.' : 'Choose an answer to continue.';
          return;
        }
        go(step, value);
        show();
      });
      // A preview (the admin's editor) takes no focus when it opens: the owner is typing there.
      if (!io.preview || history.length) (box.querySelector('textarea,input[type=email]') || heading).focus();
    }
    function thanks(box) {
      var ty = c.thank_you || {}, reward = offer.reward;
      ui.step = null;
      ui.done = 1;
      track('complete', offer, {hidden: hidden});
      add(box, 'h2', {id: 'fc-h', role: 'status'}, t(ty.title) || 'Thank you!');
      if (ty.message) add(box, 'p', {}, t(ty.message));
      var nav = add(box, 'div', {'class': 'n'});
      if (reward && reward.content) button(nav, t(reward.label) || 'Spin the wheel', 'b', function () { wheel(reward, ui); });
      button(nav, 'Close', 'b g', ui.close);
      nav.firstChild.focus();
    }
    for (var step, value; (step = steps[index]) && (value = prefilled(step)) != null;) go(step, value);
    show();
  }

  function point(degrees) { // clockwise from the top
    var r = degrees * Math.PI / 180;
    return (100 * Math.sin(r)).toFixed(2) + ' ' + (-100 * Math.cos(r)).toFixed(2);
  }

  // The server picks the slice; the wheel only lands there.
  function wheel(offer, ui) {
    var c = offer.content, slices = c.slices, n = slices.length, a = 360 / n, capture = c.email_capture || {};
    var box = ui.screen(), optional = capture.required === false, form, email, agree, done, claimed;
    ui.offer = offer;
    ui.step = null;
    if (ui.again != offer) track('impression', offer);
    add(box, 'h2', {id: 'fc-h'}, t(c.title) || 'Spin to win');
    if (c.message) add(box, 'p', {}, t(c.message));
    var svg = add(box, 'svg', {viewBox: '-104 -114 208 218', role: 'img',
      'aria-label': 'Prize wheel: ' + slices.map(function (s) { return t(s.label); }).join(', ')}, null, SVG);
    var g = add(svg, 'g', {}, null, SVG);
    slices.forEach(function (s, i) {
      add(g, n > 1 ? 'path' : 'circle', {r: 100, fill: s.color,
        d: 'M0 0L' + point(i * a) + 'A100 100 0 0 1 ' + point(i * a + a) + 'Z'}, null, SVG);
      var middle = i * a + a / 2;
      add(g, 'text', {transform: 'rotate(' + (middle - 90) + ')translate(58)' + (middle > 180 ? 'rotate(180)' : '')},
        t(s.label).slice(0, 16), SVG);
    });
    add(svg, 'path', {d: 'M-10-112H10L0-90Z', fill: '#222'}, null, SVG);
    if (capture.enabled) {
      form = add(box, 'div');
      email = add(add(form, 'label', {}, optional ? 'E-mail (optional)' : 'E-mail'), 'input', {type: 'email', autocomplete: 'email'});
      if (capture.consent_text) agree = choice(form, 'checkbox', t(capture.consent_text));
    }
    var live = add(box, 'p', {'class': 'r', role: 'status', 'aria-live': 'polite'});
    var nav = add(box, 'div', {'class': 'n'});
    var spin = button(nav, t(c.button_label) || 'Spin', 'b', function () {
      var body = {visitor_id: io.visitor, campaign_id: offer.campaign_id}, k = Math.random() * n | 0;
      var address = email && email.value.trim();
      if (email && (address ? !EMAIL.test(address) : !optional)) {
        email.setAttribute('aria-invalid', 'true');
        email.focus();
        return say(INVALID);
      }
      if (address) {
        body.email = address;
        body.email_consent = !!(agree && agree.checked);
      }
      spin.disabled = true;
      io.preview ? land({slice_index: k, label: slices[k].label, code: 'PREVIEW'}) : ask(body);
    });
    if (!io.preview) (email || spin).focus();

    function say(text) { live.textContent = text; }
    // The server set the expiry; the device's clock only counts down to it. The ticking part is
    // hidden from screen readers, which read "Valid until" once and hear only the expiry itself.
    function countdown(end, line) {
      var at = new Date(end), day = at.toDateString() != new Date().toDateString();
      var until = at.toLocaleString(io.locale, day ? {weekday: 'short', hour: '2-digit', minute: '2-digit'}
        : {hour: '2-digit', minute: '2-digit'});
      line.appendChild(d.createTextNode('Valid until ' + until + ' · '));
      var left = add(line, 'span', {'aria-hidden': 'true'});
      (function tick() {
        var s = Math.ceil((end - Date.now()) / 1000), parts = [s / 3600 | 0, s / 60 % 60 | 0, s % 60];
        if (!line.isConnected) return;
        if (s <= 0) {
          line.textContent = 'Expired at ' + until + '.';
          return say(live.textContent + ' This code has expired.');
        }
        left.textContent = 'expires in ' + parts.slice(s < 3600 ? 1 : 0).map(function (n) { return (n < 10 ? '0' : '') + n; }).join(':');
        setTimeout(safe(tick), (end - Date.now()) % 1000 || 1000);
      })();
    }
    function ask(body, again) {
      io.post('spin', body).then(function (r) {
        if (r.ok) return r.json().then(land);
        if (r.status > 499 && !again) {
          return setTimeout(safe(function () { ask(body, 1); }), 1000 * Math.min(5, +r.headers.get('Retry-After') || 1));
        }
        return r.json().then(function (j) { fail(r.status, (j.error || {}).fields || {}); });
      })['catch'](function () { fail(0, {}); });
    }
    function fail(status, fields) {
      var retry = !status || status > 428 || fields.email;
      say(fields.email ? (status == 409 ? 'This e-mail address has already played.' : INVALID)
        : retry ? 'Sorry, please try again in a moment.' : 'Sorry, this offer is no longer available.');
      spin.disabled = !retry;
    }
    function land(result) {
      var still = matchMedia('(prefers-reduced-motion: reduce)').matches;
      var end = safe(function () { if (!done) reveal(result); });
      if (!still) {
        g.style.transition = 'transform 3s cubic-bezier(.2,.7,.2,1)';
        g.addEventListener('transitionend', end);
        setTimeout(end, 3400);
      }
      g.style.transform = 'rotate(' + (1800 - (result.slice_index + 0.15 + 0.7 * Math.random()) * a) + 'deg)';
      if (still) end();
    }
    function reveal(result) {
      var code = result.code, label = t(result.label);
      done = ui.done = 1;
      track('complete', offer);
      if (form) form.remove();
      spin.remove();
      say((result.repeated ? 'You already spun this wheel. ' : '') + (code ? 'You won ' + label + '! Your code: ' + code : label + '.'));
      if (code) {
        var field = box.insertBefore(el('input', {'class': 'k', readonly: '', 'aria-label': 'Your code'}), nav);
        field.value = code;
        // The prize stays on screen; the button tells that the code was copied.
        var copy = button(nav, 'Copy code', 'b', function () {
          if (!claimed) track('claim', offer);
          claimed = 1;
          field.select();
          var copied = function () { copy.textContent = 'Copied'; };
          navigator.clipboard ? navigator.clipboard.writeText(code).then(copied, noop) : d.execCommand('copy') && copied();
        });
        if (result.expires_at) countdown(Date.parse(result.expires_at), box.insertBefore(el('p', {'class': 's'}), nav));
      }
      button(nav, 'Close', 'b g', ui.close);
      nav.firstChild.focus();
    }
  }

  // The site's opt-in cart link (decide's link_cart), so that the store's own order webhook names
  // this visitor, guests too. Shopify: the cart attribute _funnelcake_visitor, written again for
  // a new cart (its cart cookie changes) or another visitor; WooCommerce: the first-party cookie
  // funnelcake_visitor, which the store's checkout copies into the order (docs/woocommerce.md).
  popup.link = function (platform, visitor, get, set) {
    var mark = d.cookie.match(/(^|; )cart=[^;]*/) + visitor;
    if (platform != 'shopify') {
      d.cookie = 'funnelcake_visitor=' + visitor + ';path=/;samesite=lax;max-age=2592000' +
        (location.protocol == 'https:' ? ';secure' : ''); // 30 days, written again each page view
    } else if (mark != get('fc_cart')) {
      fetch('/cart/update.js', {method: 'POST', body: new URLSearchParams({'attributes[_funnelcake_visitor]': visitor})})
        .then(function (r) { if (r.ok) set('fc_cart', d.cookie.match(/(^|; )cart=[^;]*/) + visitor); })['catch'](noop);
    }
  };

  if (me && me.funnelcake) me.funnelcake(popup);
})();
