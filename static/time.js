/* Times: the server writes UTC; this shows each <time class="local-time"> in the browser's
   time zone, labelled with it (e.g. "29 Nov 2026, 23:40 CET"). */
(function () {
  "use strict";
  var zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }

  function format(iso, style) {
    var when = new Date(iso);
    if (!iso || isNaN(when)) { return ""; }
    var options = style === "time"
      ? { hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short" }
      : { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
          timeZoneName: "short" };
    try { return new Intl.DateTimeFormat(undefined, options).format(when); }
    catch (e) { return when.toString(); }
  }

  function localise(element) {
    var text = format(element.getAttribute("datetime"), element.getAttribute("data-style"));
    if (text) {
      element.textContent = text;
      if (zone) { element.setAttribute("title", "Your time zone: " + zone); }
    }
  }

  window.rivalscopeTime = { format: format, localise: localise, zone: zone };
  Array.prototype.forEach.call(document.querySelectorAll("time.local-time"), localise);
}());
