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

  function updateSites(sites) {
    sites.forEach(function (site) {
      var row = document.querySelector('tr[data-site-id="' + String(Number(site.id)) + '"]');
      if (!row) { return; }
      var status = row.querySelector(".site-status");
      var current = status.querySelector("[data-status]");
      if (!current || current.getAttribute("data-status") !== site.status) { badge(status, site.status); }
      row.querySelector(".site-pages").textContent = String(site.pages);
      row.querySelector(".site-error").textContent = site.error || "";
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
      var when = event.created_at ? new Date(event.created_at) : null;
      time.textContent = when && !isNaN(when) ? when.toISOString().slice(11, 19) : "";  // UTC, as the server renders
      var message = document.createElement("span");
      message.className = "event-message";
      message.textContent = event.message;
      item.appendChild(time);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(message);
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
