// The page for people: plain DOM calls and fetch, no framework and no build step.
// Text from the model (ids, attributes) is only ever set as textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

function setStatus(text, kind) {
  const status = $("status");
  status.textContent = text;
  status.className = kind || "";
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.detail || `HTTP ${response.status}`);
  }
  return data;
}

function attributesText(attributes) {
  const parts = Object.entries(attributes || {}).map(([k, v]) => `${k}: ${v}`);
  return parts.length ? ` (${parts.join(", ")})` : "";
}

function itemLine(row) {
  const li = document.createElement("li");
  const name = document.createElement("span");
  name.className = "item";
  name.textContent = row.item;
  li.append(name);
  const attrs = document.createElement("span");
  attrs.className = "attrs";
  attrs.textContent = attributesText(row.attributes);
  li.append(attrs);
  if (row.score !== undefined) {
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = row.buyers !== undefined
      ? ` · ${row.buyers} buyers`
      : ` · score ${row.score.toFixed(3)}`;
    li.append(score);
  }
  if (row.because && row.because.length) {
    const why = document.createElement("span");
    why.className = "why";
    why.textContent = "because of " + row.because.map((c) => c.item).join(", ");
    li.append(why);
  }
  return li;
}

function fill(listId, rows, empty) {
  const list = $(listId);
  list.replaceChildren(...rows.map(itemLine));
  if (!rows.length && empty) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = empty;
    list.append(li);
  }
}

function showList(data, who) {
  fill("history", data.history || [], "nothing");
  fill("recommendations", data.items, "no item left to recommend");
  let text = `${who}: ${data.items.length} items from model ${data.model_version}`;
  if (data.source === "fallback:popular") {
    text = `${who}: best sellers instead (${data.fallback_reason})`;
  }
  if (data.ignored_items && data.ignored_items.length) {
    text += `; not in the catalogue, ignored: ${data.ignored_items.join(", ")}`;
  }
  setStatus(text, data.source === "fallback:popular" ? "fallback" : "");
}

function listSize() {
  const n = parseInt($("n").value, 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 100) : 10;
}

$("customer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const customer = $("customer").value.trim();
  if (!customer) {
    setStatus("Type a customer id first.", "error");
    return;
  }
  setStatus("…");
  try {
    const data = await call("POST", "/v1/recommendations",
      { customer, n: listSize(), explain: true });
    showList(data, `Customer ${customer}`);
  } catch (error) {
    setStatus(error.message, "error");
  }
});

$("basket-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const basket = $("basket").value.split(",").map((s) => s.trim()).filter((s) => s);
  setStatus("…");
  try {
    const data = await call("POST", "/v1/recommendations/new-customer",
      { basket, n: listSize(), explain: true });
    showList(data, "Basket");
  } catch (error) {
    setStatus(error.message, "error");
  }
});

let suggestTimer = null;
$("customer").addEventListener("input", () => {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const q = $("customer").value.trim();
    try {
      const data = await call("GET", `/v1/customers/search?limit=20&q=${encodeURIComponent(q)}`);
      $("customer-matches").replaceChildren(...data.matches.map((id) => {
        const option = document.createElement("option");
        option.value = id;
        return option;
      }));
    } catch (error) {
      // suggestions are a convenience: the list stays as it was
    }
  }, 200);
});

async function showNeighbours(item) {
  try {
    const data = await call("POST", "/v1/similar-items", { item, n: 10 });
    $("neighbours-title").textContent =
      `Similar to ${data.item}${attributesText(data.attributes)}`;
    fill("neighbours", data.items, "none");
  } catch (error) {
    $("neighbours-title").textContent = error.message;
    fill("neighbours", []);
  }
}

$("item-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("item-query").value.trim();
  try {
    const data = await call("GET", `/v1/items/search?limit=30&q=${encodeURIComponent(q)}`);
    $("item-matches").replaceChildren(...data.matches.map((id) => {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = id;
      button.addEventListener("click", () => showNeighbours(id));
      li.append(button);
      return li;
    }));
    if (data.matches.length === 1 || data.matches[0] === q) {
      showNeighbours(data.matches[0]);
    } else if (!data.matches.length) {
      $("neighbours-title").textContent = `No item id contains "${q}"`;
      fill("neighbours", []);
    }
  } catch (error) {
    $("neighbours-title").textContent = error.message;
  }
});

(async () => {
  try {
    const model = await call("GET", "/v1/model");
    $("model").textContent = `Model ${model.model_version}: ${model.backend}, ` +
      `${model.n_customers.toLocaleString()} customers × ${model.n_items.toLocaleString()} ` +
      `items (${model.path})`;
  } catch (error) {
    $("model").textContent = `No model yet: ${error.message}`;
  }
})();
