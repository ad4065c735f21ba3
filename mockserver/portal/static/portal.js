// pivotkit developer portal: small progressive enhancements; every page works without them.
"use strict";

(function () {
  function messages() {
    var el = document.getElementById("copy-messages");
    return {
      copied: el ? el.getAttribute("data-copied") : "Copied.",
      failed: el ? el.getAttribute("data-failed") : "Copy failed."
    };
  }

  function statusFor(button) {
    var id = button.getAttribute("aria-describedby");
    return id ? document.getElementById(id) : null;
  }

  // Show / hide a key (the input switches between password and text).
  document.querySelectorAll(".js-reveal").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.getElementById(button.getAttribute("aria-controls"));
      if (!input) { return; }
      var show = input.type === "password";
      input.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
      button.textContent = show ? button.getAttribute("data-hide") : button.getAttribute("data-show");
    });
  });

  // Copy a key or a code sample to the clipboard, then say so in a live region.
  function fallbackCopy(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy"));
  }

  document.querySelectorAll(".js-copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var source = document.getElementById(button.getAttribute("data-copy-from"));
      if (!source) { return; }
      var text = "value" in source && source.tagName === "INPUT" ? source.value : source.textContent;
      var status = statusFor(button);
      var words = messages();
      var copy = navigator.clipboard && window.isSecureContext
        ? navigator.clipboard.writeText(text) : fallbackCopy(text);
      copy.then(function () {
        if (status) { status.textContent = words.copied; }
      }, function () {
        if (status) { status.textContent = words.failed; }
      });
    });
  });

  // Try it: optional parameters can be removed (not sent) and added back.
  function syncRemoved(form) {
    var box = form.querySelector(".removed");
    if (!box) { return; }
    var any = box.querySelector(".js-add:not([hidden])");
    box.hidden = !any;
  }

  function removeParam(button, moveFocus) {
    var name = button.getAttribute("data-param");
    var form = button.form;
    var row = document.getElementById("row-" + name);
    var input = document.getElementById("param-" + name);
    var add = form.querySelector('.js-add[data-param="' + name + '"]');
    if (!row || !input || !add) { return; }
    input.disabled = true;  // disabled fields are not submitted
    row.hidden = true;
    add.hidden = false;
    syncRemoved(form);
    if (moveFocus) { add.focus(); }
  }

  document.querySelectorAll(".js-remove").forEach(function (button) {
    button.addEventListener("click", function () { removeParam(button, true); });
  });

  document.querySelectorAll(".js-add").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.getAttribute("data-param");
      var form = button.form;
      var row = document.getElementById("row-" + name);
      var input = document.getElementById("param-" + name);
      if (!row || !input) { return; }
      input.disabled = false;
      row.hidden = false;
      button.hidden = true;
      syncRemoved(form);
      input.focus();
    });
  });

  // Optional parameters left out of the last request start out removed.
  document.querySelectorAll('.param[data-removed="true"] .js-remove').forEach(function (button) {
    removeParam(button, false);
  });

  // After a Try it, move focus to the result so screen readers hear the status.
  var result = document.getElementById("result");
  if (result && window.location.hash === "#result") { result.focus(); }
})();
