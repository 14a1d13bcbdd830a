// The lookalike web page: plain DOM, no build step. Server data is always set as text, never HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("api-key");
keyInput.value = sessionStorage.getItem("lookalike-key") || "";
keyInput.addEventListener("change", () => sessionStorage.setItem("lookalike-key", keyInput.value));

function headers() {
  return keyInput.value ? { Authorization: "Bearer " + keyInput.value } : {};
}

async function call(method, url, body, extraHeaders) {
  const response = await fetch(url, { method, body, headers: { ...headers(), ...(extraHeaders || {}) } });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return data;
}

function el(tag, props, children) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  for (const child of children || []) node.append(child);
  return node;
}

function status(id, text, error) {
  $(id).textContent = text;
  $(id).classList.toggle("error", !!error);
}

function picture(src, alt) {
  const img = el("img", { src, alt, loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(el("div", { className: "noimg", textContent: "no preview" })));
  return img;
}

// A picture with a region drawn on it: `quad` is four [x, y] corners relative to the picture
// (0..1), where local features found the other image.
function framedPicture(src, alt, quad) {
  const img = picture(src, alt);
  if (!quad) return img;
  const svgNs = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", "0 0 1 1");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.classList.add("region");
  const polygon = document.createElementNS(svgNs, "polygon");
  polygon.setAttribute("points", quad.map(([x, y]) => `${x},${y}`).join(" "));
  svg.append(polygon);
  return el("div", { className: "framed" }, [img, svg]);
}

// ----- tabs -----
for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    document.querySelectorAll("nav button").forEach((b) => b.classList.toggle("active", b === button));
    document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.id === "tab-" + button.dataset.tab));
    if (button.dataset.tab === "banks") loadBanks();
  });
}

// ----- search -----
let searched = null; // the last file searched: changing the rule searches it again
let searchedUrl = null; // its picture, drawn again on a card where a match lies in part of it

async function search(file) {
  searched = file;
  const preset = $("search-preset").value;
  if (searchedUrl) URL.revokeObjectURL(searchedUrl);
  searchedUrl = URL.createObjectURL(file);
  $("search-query").replaceChildren(picture(searchedUrl, "your image"));
  $("search-results").replaceChildren();
  $("search-nearest").hidden = true;
  status("search-status", "searching…");
  const form = new FormData();
  form.append("file", file);
  form.append("preset", preset);
  form.append("k", $("search-k").value || "8");
  try {
    const data = await call("POST", "/v1/search", form);
    const count = data.matches.length;
    status("search-status", count
      ? `${count} match${count === 1 ? "" : "es"} by the ${preset} rule, best first`
      : `no match by the ${preset} rule`);
    $("search-results").replaceChildren(...data.matches.map((match, rank) => matchCard(match, rank, true)));
    $("search-nearest-summary").textContent = `${data.nearest.length} nearest, not matching`;
    $("search-nearest-results").replaceChildren(...data.nearest.map((match, rank) => matchCard(match, rank, false)));
    $("search-nearest").open = false;
    $("search-nearest").hidden = data.nearest.length === 0;
  } catch (error) {
    status("search-status", error.message, true);
  }
}

function shownName(item) {
  return item.name || item.id;
}

// The share of a picture that the bounding box of a relative quad covers.
function boxArea(quad) {
  const xs = quad.map(([x]) => x);
  const ys = quad.map(([, y]) => y);
  return (Math.max(...xs) - Math.min(...xs)) * (Math.max(...ys) - Math.min(...ys));
}

function matchCard(match, rank, matching) {
  const badges = Object.entries(match.distances).map(([name, distance]) => {
    const agreed = match.agreed.includes(name);
    return el("span", {
      className: "badge" + (agreed ? " agreed" : ""),
      title: agreed ? `${name} agreed (distance ${distance})` : `${name} distance ${distance}`,
      textContent: `${agreed ? "✓ " : ""}${name} ${distance}`,
    });
  });
  const where = match.where;
  const agreed = match.agreed.length ? `agreed: ${match.agreed.join(", ")}` : "no hash agreed";
  const byRegion = where && where.by === "region";
  const inMatch = byRegion && where.picture_in === "stored";  // your image is a picture inside it
  const local = !where ? ""
    : inMatch ? "; your image is the framed picture inside it (that picture's hash)"
    : byRegion ? "; it is the framed picture inside yours (that picture's hash)"
    : `; local features: ${where.inliers} keypoints${where.mirrored ? ", mirrored" : ""}`;
  const caution = match.verified === false ? "; similar, not verified as a copy (the keypoints do not agree)" : "";
  const agreement = agreed + local + caution;
  // your image beside it, framed where the match lies in it, when that is a part of it
  const inYours = where && searchedUrl && boxArea(where.query_relative) < 0.9
    ? [el("div", { className: "in-yours", textContent: "in your image:" }), framedPicture(searchedUrl, "your image", where.query_relative)]
    : [];
  return el("div", { className: "card " + (matching ? "match" : "nearest") }, [
    framedPicture(match.thumbnail, shownName(match), where && (!byRegion || inMatch) && where.stored_relative),
    ...inYours,
    el("div", { className: "id", textContent: `${rank + 1}. ${shownName(match)}`, title: `id: ${match.id}` }),
    el("div", { className: "agreement", textContent: agreement }),
    el("div", {}, badges),
  ]);
}

$("search-preset").addEventListener("change", () => { if (searched) search(searched); });

const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  if (event.dataTransfer.files.length) search(event.dataTransfer.files[0]);
});
$("search-file").addEventListener("change", (event) => { if (event.target.files.length) search(event.target.files[0]); });

// ----- adding images -----
$("add-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = [...$("add-files").files];
  let done = 0;
  for (const file of files) {
    const form = new FormData();
    form.append("file", file);
    if (files.length === 1 && $("add-id").value) form.append("id", $("add-id").value);
    try {
      const data = await call("POST", "/v1/images", form);
      done += 1;
      status("add-status", `${done}/${files.length}: ${data.name || data.id} ${data.status}`);
    } catch (error) {
      status("add-status", `${file.name}: ${error.message}`, true);
      return;
    }
  }
});

// ----- duplicates -----
$("dupes-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  status("dupes-status", "grouping…");
  try {
    const data = await call("GET", "/v1/duplicates?preset=" + encodeURIComponent($("dupes-preset").value));
    status("dupes-status", `${data.total_groups} groups`);
    $("dupes-results").replaceChildren(...data.groups.map((group, index) => el("div", { className: "group" }, [
      el("strong", { textContent: `Group ${index + 1} (${group.members.length} images)` }),
      el("div", { className: "grid" }, group.members.map((member) => el("div", { className: "card" }, [
        picture(member.thumbnail, shownName(member)),
        el("div", { className: "id", textContent: shownName(member), title: `id: ${member.id}` }),
        el("span", { className: "badge" + (member.best ? " best" : ""), textContent: member.best ? "best copy" : `${member.width}×${member.height}` }),
      ]))),
    ])));
  } catch (error) {
    status("dupes-status", error.message, true);
  }
});

// ----- banks -----
async function loadBanks() {
  try {
    const data = await call("GET", "/v1/banks");
    $("bank-table").tBodies[0].replaceChildren(...data.banks.map((bank) => {
      const remove = el("button", { textContent: "delete" });
      remove.addEventListener("click", async () => {
        if (!confirm(`Delete bank ${bank.name} and its hashes?`)) return;
        try { await call("DELETE", "/v1/banks/" + encodeURIComponent(bank.name)); loadBanks(); }
        catch (error) { status("bank-status", error.message, true); }
      });
      return el("tr", {}, [el("td", { textContent: bank.name }), el("td", { textContent: bank.rule }),
        el("td", { textContent: String(bank.hashes) }), el("td", {}, [remove])]);
    }));
    $("bank-import-name").replaceChildren(...data.banks.map((bank) => el("option", { textContent: bank.name })));
  } catch (error) {
    status("bank-status", error.message, true);
  }
}

$("bank-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: $("bank-name").value, algorithm: $("bank-algorithm").value };
  if ($("bank-distance").value) body.max_distance = Number($("bank-distance").value);
  try {
    await call("POST", "/v1/banks", JSON.stringify(body), { "Content-Type": "application/json" });
    status("bank-status", `bank ${body.name} created`);
    loadBanks();
  } catch (error) {
    status("bank-status", error.message, true);
  }
});

$("bank-import").addEventListener("submit", async (event) => {
  event.preventDefault();
  const name = $("bank-import-name").value;
  try {
    const data = await call("POST", `/v1/banks/${encodeURIComponent(name)}/hashes`, $("bank-import-text").value,
      { "Content-Type": "text/plain" });
    status("bank-status", `${name}: ${data.added} added, ${data.updated} updated, ${data.unchanged} unchanged`);
    loadBanks();
  } catch (error) {
    status("bank-status", error.message, true);
  }
});

$("check-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("file", $("check-file").files[0]);
  try {
    const data = await call("POST", "/v1/check", form);
    status("bank-status", data.matched ? "the upload matches a bank" : "no bank matches the upload");
    $("check-results").replaceChildren(...data.banks.map((bank) => el("div", { className: "card" }, [
      el("strong", { textContent: `${bank.bank}: ${bank.matched ? "match" : "no match"}` }),
      el("div", { textContent: `rule: ${bank.rule}` + (bank.skipped ? ` (skipped: ${bank.skipped})` : "") }),
      el("div", {}, bank.matches.map((m) => el("span", { className: "badge" }, [
        el("span", { className: "match-id", textContent: m.id }), ` at ${m.distance}`]))),
    ])));
  } catch (error) {
    status("bank-status", error.message, true);
  }
});
