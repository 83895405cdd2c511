// Progressive enhancement only: every page works without this file.
// The topic editor's preview follows the query (and the preview's filters) as they are typed:
// the server renders the same fragment the "Preview" button shows, and it replaces the preview
// panel. Its "Next page" links load the next page in place instead of leaving the editor.
"use strict";
(function () {
  const query = document.querySelector("textarea[data-preview]");
  const panel = document.getElementById("preview");
  if (!query || !panel) return;
  const filters = document.getElementById("preview-filters");
  let timer = null;
  let latest = 0;
  function filterParams() {
    if (!filters) return "";
    const data = new URLSearchParams(new FormData(filters));
    data.delete("q");
    for (const [name, value] of Array.from(data.entries())) if (!value) data.delete(name);
    const text = data.toString();
    return text ? "&" + text : "";
  }
  async function load(url) {
    const ticket = ++latest;
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
  function refresh() {
    load(query.dataset.preview + "?query=" + encodeURIComponent(query.value) + filterParams());
  }
  function later() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  }
  query.addEventListener("input", later);
  if (filters) {
    filters.addEventListener("input", later);
    // "Open in search" takes the query as it is now, not as it was saved.
    filters.addEventListener("submit", function () {
      filters.elements.namedItem("q").value = query.value;
    });
  }
  panel.addEventListener("click", function (event) {
    const link = event.target.closest("a[data-fragment]");
    if (!link) return;
    event.preventDefault();
    load(link.dataset.fragment);
  });
})();
