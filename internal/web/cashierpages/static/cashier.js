// OpenCashier cashier screens: small enhancements over pages that work
// without JavaScript. Served from our own origin (CSP script-src 'self');
// no inline script, no third-party code.
(function () {
  "use strict";

  // Loading state: the pressed button says "Please wait" and the form's
  // buttons stop taking clicks until the next page.
  function busyForms() {
    document.querySelectorAll("form.busy-form").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        var btn = ev.submitter || form.querySelector("button[type=submit]");
        // After the other submit handlers: a check may still stop it.
        window.setTimeout(function () {
          if (ev.defaultPrevented) { return; }
          if (btn && btn.dataset.busy) {
            btn.setAttribute("aria-busy", "true");
            btn.textContent = btn.dataset.busy;
          }
          form.setAttribute("aria-busy", "true");
          form.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        }, 0);
      });
    });
    // Coming back with the browser's Back button shows a live page again.
    window.addEventListener("pageshow", function (ev) {
      if (!ev.persisted) { return; }
      document.querySelectorAll("button[disabled]").forEach(function (b) { b.disabled = false; });
    });
  }

  // The deposit amount form: limits and fee of the chosen currency, and
  // the fee, conversion and credit as the customer types.
  function livePreview() {
    var form = document.getElementById("amount-form");
    if (!form || !form.dataset.quote) { return; }
    var amount = document.getElementById("amount");
    var currency = document.getElementById("currency");
    var preview = document.getElementById("preview");
    var timer = 0, seq = 0;

    function show(answer) {
      preview.textContent = "";
      if (!answer.ok) {
        if (answer.error) {
          var p = document.createElement("p");
          p.className = "preview-error";
          p.textContent = answer.error;
          preview.appendChild(p);
        }
        return;
      }
      var dl = document.createElement("dl");
      (answer.lines || []).forEach(function (l) {
        var row = document.createElement("div");
        row.className = l.Strong ? "row strong" : "row";
        var dt = document.createElement("dt");
        dt.textContent = l.Label;
        var dd = document.createElement("dd");
        dd.textContent = l.Value;
        row.appendChild(dt);
        row.appendChild(dd);
        dl.appendChild(row);
      });
      preview.appendChild(dl);
    }

    function quote() {
      var mine = ++seq;
      if (!amount.value.trim()) { preview.textContent = ""; return; }
      var q = new URLSearchParams(new FormData(form));
      preview.setAttribute("aria-busy", "true");
      fetch(form.dataset.quote + "?" + q.toString(), { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (res) { return res.json(); })
        .then(function (answer) { if (mine === seq) { show(answer); } })
        .catch(function () { /* the Review step still works */ })
        .finally(function () { if (mine === seq) { preview.removeAttribute("aria-busy"); } });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(quote, 300);
    }

    amount.addEventListener("input", later);
    if (currency) {
      currency.addEventListener("change", function () {
        var opt = currency.options[currency.selectedIndex];
        var set = function (id, text) { var el = document.getElementById(id); if (el) { el.textContent = text; } };
        set("limits", opt.dataset.limits || "");
        set("fee-rule", opt.dataset.fee || "");
        set("cur-code", opt.value);
        quote();
      });
    }
  }

  // Field checks as the customer types; the server checks again.
  var checks = {
    name: function (v) { return v.trim().length >= 2 && v.trim().length <= 100; },
    iban: function (v) {
      var s = v.replace(/\s+/g, "").toUpperCase();
      if (!/^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$/.test(s)) { return false; }
      s = s.slice(4) + s.slice(0, 4);
      var rem = 0;
      for (var i = 0; i < s.length; i++) {
        var c = s.charCodeAt(i);
        var d = c >= 65 ? String(c - 55) : s[i];
        for (var j = 0; j < d.length; j++) { rem = (rem * 10 + (d.charCodeAt(j) - 48)) % 97; }
      }
      return rem === 1;
    },
    bic: function (v) { var s = v.replace(/\s+/g, "").toUpperCase(); return s === "" || /^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$/.test(s); },
    wallet: function (v) { var s = v.trim(); return s.length >= 3 && /^[^\s@]{1,64}(@[^\s@]{1,100})?$/.test(s); }
  };

  function checkedForms() {
    document.querySelectorAll("form.checked-form").forEach(function (form) {
      var inputs = Array.prototype.slice.call(form.querySelectorAll("input[data-check]"));
      function check(input, show) {
        var ok = (input.value.trim() === "" && !input.required) || (checks[input.dataset.check] || function () { return true; })(input.value);
        var err = document.getElementById(input.id + "-error");
        if (show || input.getAttribute("aria-invalid") === "true") {
          input.setAttribute("aria-invalid", ok ? "false" : "true");
          if (err) { err.textContent = ok ? "" : (input.dataset.error || err.dataset.message || ""); }
          input.classList.add("touched");
        }
        return ok;
      }
      inputs.forEach(function (input) {
        input.addEventListener("input", function () { check(input, input.classList.contains("touched")); });
        input.addEventListener("blur", function () { if (input.value.trim() !== "") { check(input, true); } });
      });
      form.addEventListener("submit", function (ev) {
        if (ev.submitter && ev.submitter.hasAttribute("formnovalidate")) { return; }
        var bad = inputs.filter(function (input) { return !check(input, true); });
        if (bad.length) {
          ev.preventDefault();
          bad[0].focus();
        }
      });
    });
  }

  // The status page asks for news and reloads when there are some; after
  // a completed operation it goes to the success URL by itself.
  function statusPage() {
    var box = document.getElementById("status");
    if (!box) { return; }
    if (box.dataset.redirect) {
      window.setTimeout(function () { window.location.assign(box.dataset.redirect); }, (Number(box.dataset.after) || 5) * 1000);
    }
    if (!box.dataset.poll) { return; }
    var every = 2000, current = box.dataset.status;
    function poll() {
      fetch(box.dataset.poll, { headers: { "Accept": "application/json" }, credentials: "same-origin" })
        .then(function (res) { return res.json(); })
        .then(function (answer) {
          if (answer.status && answer.status !== current && answer.status !== "unknown") {
            window.location.reload();
            return;
          }
          window.setTimeout(poll, every);
        })
        .catch(function () { window.setTimeout(poll, every * 2); });
    }
    window.setTimeout(poll, every);
  }

  // A first screen shown in answer to the app's URL drops the one-time
  // token from the address (the token is spent; a reload must not use it).
  function canonicalURL() {
    var c = document.getElementById("canonical");
    if (c && c.dataset.url && window.history && window.history.replaceState) {
      window.history.replaceState(null, "", c.dataset.url);
    }
  }

  function start() {
    canonicalURL();
    busyForms();
    livePreview();
    checkedForms();
    statusPage();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
