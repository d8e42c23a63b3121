// gigo-mail preview: tabs (kept in the URL hash, so a reload keeps your place) and live reload.
(function () {
  "use strict";
  var body = document.body;
  var tabs = Array.prototype.slice.call(document.querySelectorAll("[data-tab]"));

  function show(name) {
    var known = tabs.some(function (t) { return t.dataset.tab === name; });
    if (!known) { return; }
    tabs.forEach(function (t) { t.classList.toggle("active", t.dataset.tab === name); });
    Array.prototype.forEach.call(document.querySelectorAll(".tab"), function (section) {
      section.classList.toggle("active", section.id === "tab-" + name);
    });
  }
  window.addEventListener("hashchange", function () { show(location.hash.slice(1)); });
  if (location.hash) { show(location.hash.slice(1)); }

  // Live reload: /version long-polls until the build (or the inbox) changes.
  var watch = body.dataset.watch;
  if (!watch || watch === "none") { return; }
  var version = body.dataset.version, inbox = body.dataset.inbox, wasOffline = false;
  function poll() {
    var query = watch === "inbox" ? "inbox=" + inbox : "after=" + version;
    fetch("/version?" + query, { cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(function (v) {
        body.classList.remove("offline");
        var changed = watch === "inbox" ? String(v.inbox) !== inbox : String(v.version) !== version;
        if (changed || wasOffline) { location.reload(); } else { poll(); }
      })
      .catch(function () { wasOffline = true; body.classList.add("offline"); setTimeout(poll, 1500); });
  }
  poll();
})();
