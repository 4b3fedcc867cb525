/* Live batch page: polls the status document, updates the progress bar, the per-site
   statuses and the activity timeline without reloading. Text is set with textContent only. */
(function () {
  "use strict";
  var root = document.getElementById("batch");
  if (!root || !window.fetch) { return; }
  var statusUrl = root.getAttribute("data-status-url");
  var lastEvent = parseInt(root.getAttribute("data-last-event") || "0", 10) || 0;
  var finished = root.getAttribute("data-finished") === "true";
  var delay = 1000;
  var MAX_DELAY = 15000;

  function badge(container, status) {
    var span = document.createElement("span");
    span.className = "badge badge-" + status;
    span.setAttribute("data-status", status);
    span.textContent = status;
    container.textContent = "";
    container.appendChild(span);
  }

  function technical(container, detail) {
    var box = document.createElement("details");
    box.className = "technical";
    var summary = document.createElement("summary");
    summary.textContent = "Technical detail";
    var code = document.createElement("code");
    code.textContent = detail;
    box.appendChild(summary);
    box.appendChild(code);
    container.appendChild(document.createTextNode(" "));
    container.appendChild(box);
  }

  function failure(container, reason, detail) {
    var span = document.createElement("span");
    span.className = "reason";
    span.textContent = reason;
    container.appendChild(span);
    if (detail) { technical(container, detail); }
  }

  function updateSites(sites) {
    sites.forEach(function (site) {
      var row = document.querySelector('tr[data-site-id="' + String(Number(site.id)) + '"]');
      if (!row) { return; }
      var status = row.querySelector(".site-status");
      var current = status.querySelector("[data-status]");
      if (!current || current.getAttribute("data-status") !== site.status) { badge(status, site.status); }
      row.querySelector(".site-pages").textContent = String(site.pages);
      var name = row.querySelector(".site-name");
      if (name && site.name && name.textContent !== site.name) { name.textContent = site.name; }
      var cell = row.querySelector(".site-error");
      var shown = cell.querySelector(".reason");
      if (!site.reason) { cell.textContent = ""; }
      else if (!shown || shown.textContent !== site.reason) { cell.textContent = ""; failure(cell, site.reason, site.error); }
    });
  }

  function addEvents(events) {
    var list = document.getElementById("timeline");
    events.forEach(function (event) {
      if (event.id <= lastEvent) { return; }
      lastEvent = event.id;
      var item = document.createElement("li");
      item.className = "event event-" + String(event.kind).replace(/[^a-z_]/g, "");
      item.setAttribute("data-event-id", String(event.id));
      var time = document.createElement("time");
      time.setAttribute("datetime", event.created_at || "");
      time.className = "local-time";
      time.setAttribute("data-style", "time");
      var clock = window.rivalscopeTime;
      time.textContent = clock ? clock.format(event.created_at, "time") : String(event.created_at || "");
      var message = document.createElement("span");
      message.className = "event-message";
      message.textContent = event.message;
      item.appendChild(time);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(message);
      if (event.detail) { technical(item, event.detail); }
      list.appendChild(item);
    });
  }

  function apply(doc) {
    var bar = document.getElementById("batch-progress");
    bar.value = doc.progress;
    bar.textContent = doc.progress + "%";
    document.getElementById("progress-text").textContent = doc.progress + "%";
    badge(document.getElementById("batch-status"), doc.status);
    updateSites(doc.sites || []);
    addEvents(doc.events || []);
    if (doc.finished) {
      finished = true;
      root.setAttribute("data-finished", "true");
      document.getElementById("running-actions").hidden = true;
      document.getElementById("finished-actions").hidden = false;
      document.getElementById("comparison-link").hidden = !(doc.links && doc.links.comparison);
    }
  }

  function poll() {
    fetch(statusUrl + "?after=" + lastEvent, {
      credentials: "same-origin", headers: { "Accept": "application/json" }, cache: "no-store"
    }).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json();
    }).then(function (doc) {
      delay = 1000;
      apply(doc);
    }).catch(function () {
      delay = Math.min(delay * 2, MAX_DELAY);
    }).then(function () {
      if (!finished) { window.setTimeout(poll, delay); }
    });
  }

  if (!finished) { window.setTimeout(poll, 500); }
}());
