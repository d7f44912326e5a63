/* Funnelcake admin: small progressive enhancements. Every form works without this file. */
(function () {
  'use strict';
  document.documentElement.classList.add('js');

  // Show only the fields that apply to a question's type.
  function syncStep(select) {
    var step = select.closest('[data-step]');
    if (step) step.setAttribute('data-type', select.value);
  }
  // Show only the parameter of the chosen trigger.
  function syncTrigger(select) {
    var params = document.querySelectorAll('.trigger-param');
    for (var i = 0; i < params.length; i++) {
      params[i].classList.toggle('shown', params[i].classList.contains('trigger-' + select.value));
    }
  }
  // Show the code or pool input of a slice only when its reward needs it.
  function syncReward(select) {
    var row = select.closest('[data-slice]');
    if (row) row.setAttribute('data-reward', select.value);
  }
  function sync(el) {
    if (el.hasAttribute('data-step-type')) syncStep(el);
    if (el.hasAttribute('data-trigger-type')) syncTrigger(el);
    if (el.hasAttribute('data-reward-type')) syncReward(el);
  }
  var selects = document.querySelectorAll('[data-step-type], [data-trigger-type], [data-reward-type]');
  for (var i = 0; i < selects.length; i++) sync(selects[i]);
  document.addEventListener('change', function (event) {
    if (event.target && event.target.matches('select')) sync(event.target);
  });

  // Ask before irreversible actions.
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('[data-confirm]');
    if (button && !window.confirm(button.getAttribute('data-confirm'))) event.preventDefault();
  });

  // Live preview: refresh the preview frame shortly after the form changes.
  var form = document.getElementById('variant-form');
  var previewButton = document.querySelector('[data-preview-button]');
  if (form && previewButton) {
    var timer = null;
    var refresh = function () {
      // requestSubmit keeps formaction/formtarget of the preview button.
      if (form.requestSubmit) form.requestSubmit(previewButton);
      else previewButton.click();
    };
    form.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 800);
    });
    form.addEventListener('change', function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
    var frame = document.querySelector('[data-autopreview]');
    if (frame) refresh();
  }

  // A preview frame runs the real snippet, which moves focus into its popup as it does on a
  // store. Right after a frame loads, give the focus back to where the owner was (typing in the
  // editor, say), so a live refresh never swallows their keystrokes.
  var lastFocused = null;
  var guardUntil = 0;
  document.addEventListener('focusin', function (event) {
    if (event.target && event.target.tagName !== 'IFRAME') lastFocused = event.target;
  });
  var frames = document.querySelectorAll('iframe.preview-frame');
  for (var f = 0; f < frames.length; f++) {
    frames[f].addEventListener('load', function () { guardUntil = Date.now() + 2500; });
  }
  window.addEventListener('blur', function () {
    setTimeout(function () {
      var active = document.activeElement;
      if (Date.now() > guardUntil || !active || active.tagName !== 'IFRAME') return;
      if (lastFocused && document.contains(lastFocused)) lastFocused.focus({ preventScroll: true });
      else active.blur();
    }, 0);
  });

  // Focus the error summary so keyboard and screen-reader users land on it.
  var summary = document.querySelector('.error-summary');
  if (summary) summary.focus();
}());
