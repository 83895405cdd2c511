// The alerts inbox's keyboard, as feed readers have it: j/k move, r/f/d set the current
// article's state (then move on), x selects it for the bulk buttons, o (or Enter) opens it. Progressive enhancement
// only: every action is also a form button that works without this file.
"use strict";
(function () {
  const form = document.getElementById("review-form");
  if (!form) return;
  const items = Array.from(form.querySelectorAll("[data-item]"));
  const keys = { r: "reviewed", f: "flagged", d: "dismissed" };
  let current = -1;

  function move(to) {
    if (!items.length) return;
    if (current >= 0) items[current].classList.remove("current");
    current = Math.max(0, Math.min(items.length - 1, to));
    const item = items[current];
    item.classList.add("current");
    item.setAttribute("aria-current", "true");
    items.forEach(function (other) { if (other !== item) other.removeAttribute("aria-current"); });
    item.scrollIntoView({ block: "nearest" });
  }

  function show(item, change) {
    const before = item.dataset.state;
    item.dataset.state = change.state;
    item.className = item.className.replace(/\bstate-\w+/, "state-" + change.state);
    const badge = item.querySelector(".badge.state");
    if (badge) badge.textContent = change.state;
    let who = item.querySelector(".who");
    if (!who) {
      who = document.createElement("span");
      who.className = "who";
      const meta = item.querySelector(".meta");
      if (meta) { meta.append(" · "); meta.append(who); }
    }
    who.textContent = change.state + " by " + change.updated_by;
    const counts = document.getElementById("inbox-counts");
    if (counts && (before === "new") !== (change.state === "new")) {
      const done = Number(counts.dataset.done) + (change.state === "new" ? -1 : 1);
      counts.dataset.done = String(done);
      const strong = counts.querySelector("strong");
      if (strong) strong.textContent = done + " of " + counts.dataset.total + " reviewed";
    }
  }

  async function mark(state) {
    if (current < 0) return;
    const item = items[current];
    const data = new FormData();
    data.append("csrf_token", form.elements.namedItem("csrf_token").value);
    data.append("topic", form.elements.namedItem("topic").value);
    data.append("set", state + ":" + item.dataset.article);
    item.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.action, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const answer = await response.json();
      if (response.ok) answer.changed.forEach(function (change) { show(item, change); });
      else window.alert(answer.error || "The change was refused.");
    } catch (error) {
      window.alert("The change could not be sent: " + error);
    } finally {
      item.removeAttribute("aria-busy");
    }
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      if (!(target.type === "checkbox")) return; // typing a note or a filter is not a shortcut
    }
    if (event.key === "j") { move(current + 1); event.preventDefault(); }
    else if ((event.key === "o" || event.key === "Enter") && current >= 0 && target === document.body) {
      const link = items[current].querySelector("a.title");
      if (link) { event.preventDefault(); window.location.assign(link.href); }
    }
    else if (event.key === "k") { move(current - 1); event.preventDefault(); }
    else if (event.key === "x" && current >= 0) {
      const box = items[current].querySelector("input[type=checkbox]");
      if (box) box.checked = !box.checked;
      event.preventDefault();
    } else if (keys[event.key]) {
      event.preventDefault();
      const at = current;
      mark(keys[event.key]).then(function () { if (at === current) move(current + 1); });
    }
  });
  items.forEach(function (item, index) {
    item.addEventListener("click", function () { move(index); });
  });
})();
