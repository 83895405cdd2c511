// Progressive enhancement only: every page works without this file.
// The topic editor's preview follows the query as it is typed: the server renders the same
// fragment the "Preview" button shows, and it replaces the preview panel.
"use strict";
(function () {
  const query = document.querySelector("textarea[data-preview]");
  const panel = document.getElementById("preview");
  if (!query || !panel) return;
  let timer = null;
  let latest = 0;
  async function refresh() {
    const ticket = ++latest;
    const url = query.dataset.preview + "?query=" + encodeURIComponent(query.value);
    try {
      const response = await fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" });
      if (!response.ok || ticket !== latest) return; // an older answer must not replace a newer one
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      panel.replaceChildren(...Array.from(doc.body.childNodes).map((node) => document.importNode(node, true)));
      query.setAttribute("aria-invalid", panel.querySelector(".query-error") ? "true" : "false");
      panel.dataset.query = query.value;
    } catch (error) {
      // Offline or the server went away: the Preview button still works.
    }
  }
  query.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  });
})();
