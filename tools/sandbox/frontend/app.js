// The sandbox's frontend: three views over the orders and checkout APIs.
// Chaos faults change the configuration the page is served with (window.SANDBOX_FRONTEND).
(function () {
  "use strict";
  const cfg = window.SANDBOX_FRONTEND || {};
  const view = document.getElementById("view");
  const banner = document.getElementById("error");

  function showError(text) {
    banner.hidden = false;
    banner.textContent = text;
    console.error(text);
  }

  function clearError() {
    banner.hidden = true;
    banner.textContent = "";
  }

  async function api(method, path, body) {
    const init = { method: method, headers: {} };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const data = await res.json().catch(function () { return {}; });
    if (!res.ok) {
      const rid = res.headers.get("x-request-id") || "unknown";
      throw new Error(method + " " + path + " failed: " + res.status + " " +
        (data.detail || data.title || "") + " (request " + rid + ")");
    }
    return data;
  }

  function list(items, render) {
    const ul = document.createElement("ul");
    for (const item of items) {
      const li = document.createElement("li");
      li.textContent = render(item);
      ul.appendChild(li);
    }
    return ul;
  }

  function heading(text) {
    view.textContent = "";
    const h = document.createElement("h1");
    h.textContent = text;
    view.appendChild(h);
  }

  async function renderOrders() {
    heading("Orders");
    const data = await api("GET", "/api/v1/orders?limit=10");
    view.appendChild(list(data.orders, function (o) {
      return "#" + o.id + " " + o.quantity + " × " + o.item;
    }));
    const promos = await api("GET", "/api/v1/promotions");
    const p = document.createElement("p");
    p.id = "promotions";
    p.textContent = promos.promotions.length + " promotion(s)";
    view.appendChild(p);
  }

  function drawTotals(order, totals) {
    const p = document.createElement("p");
    p.id = "totals";
    // the broken build reads totals that the API never sends
    p.textContent = "Total: " + (totals ? totals.amount_cents : order.total_cents) + " cents";
    view.appendChild(p);
  }

  async function renderCheckout() {
    heading("Checkout");
    const data = await api("GET", "/api/v1/orders?limit=1");
    if (cfg.broken_view === "checkout") {
      // rendered on the next frame, outside any try: an uncaught TypeError
      requestAnimationFrame(function () { drawTotals(data.orders[0] || {}, data.totals.breakdown); });
      return;
    }
    if (!data.orders.length) {
      view.appendChild(document.createTextNode("No order to check out yet."));
      return;
    }
    const order = data.orders[0];
    const result = await api("POST", "/api/v1/checkout", { order_id: order.id });
    const p = document.createElement("p");
    p.id = "summary";
    p.textContent = "Order #" + order.id + ": " + (result.summary || "no summary");
    view.appendChild(p);
    drawTotals(order, null);
  }

  function renderNew() {
    heading("New order");
    const form = document.createElement("form");
    form.id = "new-order";
    form.innerHTML = '<label>Item <input name="item" id="item" required></label> ' +
      '<label>Quantity <input name="quantity" id="quantity" type="number" value="1" min="1"></label> ' +
      '<button type="submit" id="create">Create</button>';
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      const body = { item: form.item.value, quantity: Number(form.quantity.value || 1) };
      api("POST", "/api/v1/orders", body).then(function (order) {
        const p = document.createElement("p");
        p.id = "created";
        p.textContent = "Created order #" + order.id;
        view.appendChild(p);
      }).catch(function (err) { showError(err.message); });
    });
    view.appendChild(form);
    if (cfg.broken_view === "new") {
      requestAnimationFrame(function () { drawTotals({}, cfg.totals.breakdown); });
    }
  }

  const routes = { "#/orders": renderOrders, "#/checkout": renderCheckout, "#/new": renderNew };

  async function route() {
    clearError();
    const render = routes[location.hash] || renderOrders;
    if (cfg.broken_view === "orders" && render === renderOrders) {
      requestAnimationFrame(function () { drawTotals({}, cfg.totals.breakdown); });
    }
    try {
      await render();
      document.body.dataset.view = location.hash || "#/orders";
    } catch (err) {
      showError(err.message);
    }
  }

  window.addEventListener("hashchange", route);
  route();

  // a new build of the frontend (a fault switched on or off): load it
  if (window.EventSource) {
    new EventSource("/app/changes").onmessage = function (e) {
      if (Number(e.data) !== (cfg.version || 0)) {
        location.reload();
      }
    };
  }
})();
