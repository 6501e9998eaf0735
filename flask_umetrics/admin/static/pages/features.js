/* Features pages: the list's on/off switches (in place), the new-feature form's typed value
   inputs, and the rule editor (add, remove, reorder rules; the coverage slider; the targeting
   builder whose attribute / operator / value rows compile to GrowthBook's condition JSON).
   Without this script every form still posts: the switches reload the page, a blank rule is
   always offered, and conditions are edited as JSON. */
(function () {
  "use strict";

  // -- the on/off switch of the list -------------------------------------------------------

  function wireSwitch(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      var wanted = form.querySelector("input[name=on]");
      button.setAttribute("aria-busy", "true");
      button.disabled = true;
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      }).then(function (answer) {
        button.setAttribute("aria-checked", answer.on ? "true" : "false");
        button.querySelector(".um-switch-text").textContent = answer.on ? "On" : "Off";
        wanted.value = answer.on ? "false" : "true";
        var row = form.closest("tr");
        var state = row && row.querySelector("[data-testid^='state-']");
        if (state) state.textContent = answer.state;
      }).catch(function () {
        form.submit();  // show the server's answer (an error page says why)
      }).finally(function () {
        button.removeAttribute("aria-busy");
        button.disabled = false;
      });
    });
  }

  // -- the new-feature form ------------------------------------------------------------------

  function wireValueType(select) {
    var form = select.form;
    var typed = form.querySelector("[data-typed-values]");
    var note = form.querySelector("[data-boolean-note]");
    function apply() {
      var type = select.value;
      typed.hidden = type === "boolean";
      note.hidden = type !== "boolean";
      typed.querySelectorAll("[data-typed]").forEach(function (input) {
        input.type = type === "number" ? "number" : "text";
        if (type === "number") input.step = "any";
        var examples = input.name === "default_value"
          ? { string: "blue", number: "10", json: '{"limit": 10}' }
          : { string: "green", number: "20", json: '{"limit": 20}' };
        input.placeholder = examples[type] || "";
        input.required = type !== "boolean";
      });
    }
    select.addEventListener("change", apply);
    apply();
  }

  // -- targeting: rows <-> GrowthBook condition JSON -----------------------------------------

  var OPERATORS = [
    ["eq", "equals"], ["ne", "does not equal"], ["in", "is in list"], ["nin", "is not in list"],
    ["contains", "contains"], ["regex", "matches regex"], ["gt", "is greater than"],
    ["lt", "is less than"], ["exists", "exists"], ["segment", "is in segment"]
  ];
  var SPECIAL = /[.*+?^${}()|[\]\\]/g;
  var LITERAL = /^(?:[^.*+?^${}()|[\]\\]|\\[.*+?^${}()|[\]\\])*$/;

  function typed(text) {
    if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
    if (text === "true" || text === "false") return text === "true";
    return text;
  }

  function isPrimitive(value) {
    return typeof value === "string" || typeof value === "number" || typeof value === "boolean";
  }

  // A value the rows can show and compile back unchanged (a string "12" cannot: it would
  // come back as the number 12).
  function asText(value) {
    if (!isPrimitive(value)) return null;
    var text = String(value);
    return typed(text) === value ? text : null;
  }

  function listText(values) {
    if (!Array.isArray(values)) return null;
    var texts = values.map(asText);
    if (texts.some(function (t) { return t === null || t.indexOf(",") >= 0 || t.trim() !== t || t === ""; })) return null;
    return texts.join(", ");
  }

  function rowOf(key, value) {
    if (key === "$inSegment") return typeof value === "string" ? { attr: "", op: "segment", value: value } : null;
    if (key.charAt(0) === "$") return null;
    if (isPrimitive(value)) {
      var text = asText(value);
      return text === null ? null : { attr: key, op: "eq", value: text };
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) return null;
    var ops = Object.keys(value);
    if (ops.length !== 1) return null;
    var op = ops[0], arg = value[op], shown;
    if (op === "$eq" || op === "$ne" || op === "$gt" || op === "$lt") {
      shown = asText(arg);
      return shown === null ? null : { attr: key, op: op.slice(1), value: shown };
    }
    if (op === "$in" || op === "$nin") {
      shown = listText(arg);
      return shown === null ? null : { attr: key, op: op.slice(1), value: shown };
    }
    if (op === "$regex" && typeof arg === "string") {
      if (LITERAL.test(arg)) return { attr: key, op: "contains", value: arg.replace(/\\(.)/g, "$1") };
      return { attr: key, op: "regex", value: arg };
    }
    if (op === "$exists" && arg === true) return { attr: key, op: "exists", value: "" };
    return null;
  }

  // The rows a condition stands for, or null when it is too complex for them.
  function parseCondition(condition) {
    if (condition === null) return [];
    if (typeof condition !== "object" || Array.isArray(condition)) return null;
    var keys = Object.keys(condition);
    var pairs = [];
    if (keys.length === 1 && keys[0] === "$and" && Array.isArray(condition.$and)) {
      for (var i = 0; i < condition.$and.length; i++) {
        var part = condition.$and[i];
        if (!part || typeof part !== "object" || Object.keys(part).length !== 1) return null;
        var k = Object.keys(part)[0];
        pairs.push([k, part[k]]);
      }
    } else {
      keys.forEach(function (k) { pairs.push([k, condition[k]]); });
    }
    var rows = [];
    for (var j = 0; j < pairs.length; j++) {
      var row = rowOf(pairs[j][0], pairs[j][1]);
      if (row === null) return null;
      rows.push(row);
    }
    return rows;
  }

  function pairOf(row) {
    var value = row.value.trim(), attr = row.attr.trim();
    if (row.op === "segment") return value ? ["$inSegment", value] : null;
    if (!attr || (!value && row.op !== "exists")) return null;  // not filled in yet
    var list = function () { return value.split(",").map(function (v) { return typed(v.trim()); }); };
    switch (row.op) {
      case "eq": return [attr, typed(value)];
      case "ne": return [attr, { $ne: typed(value) }];
      case "in": return [attr, { $in: list() }];
      case "nin": return [attr, { $nin: list() }];
      case "contains": return [attr, { $regex: value.replace(SPECIAL, "\\$&") }];
      case "regex": return [attr, { $regex: value }];
      case "gt": return [attr, { $gt: typed(value) }];
      case "lt": return [attr, { $lt: typed(value) }];
      case "exists": return [attr, { $exists: true }];
    }
    return null;
  }

  function compile(rows) {
    var pairs = rows.map(pairOf).filter(Boolean);
    if (!pairs.length) return null;
    var keys = pairs.map(function (p) { return p[0]; });
    var distinct = keys.every(function (k, i) { return keys.indexOf(k) === i; });
    if (distinct) {
      var condition = {};
      pairs.forEach(function (p) { condition[p[0]] = p[1]; });
      return condition;
    }
    return { $and: pairs.map(function (p) { var part = {}; part[p[0]] = p[1]; return part; }) };
  }

  function describe(rows) {
    var parts = rows.filter(function (r) { return pairOf(r) !== null; }).map(function (row) {
      var label = OPERATORS.filter(function (o) { return o[0] === row.op; })[0][1];
      if (row.op === "segment") return "in segment " + row.value;
      if (row.op === "exists") return row.attr + " exists";
      return row.attr + " " + label + " " + row.value;
    });
    return parts.length ? parts.join(" and ") : "everyone";
  }

  function element(tag, props) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) { node[k] = props[k]; });
    return node;
  }

  function wireTargeting(rule, segments) {
    var holder = rule.querySelector("[data-targeting-rows]");
    var textarea = rule.querySelector("[data-condition]");
    var summary = rule.querySelector("[data-targeting-summary]");
    var add = rule.querySelector("[data-add-condition]");
    var details = rule.querySelector("[data-json-details]");
    var listId = "um-segments-list";

    function rows() {
      return Array.prototype.map.call(holder.querySelectorAll(".um-cond-row"), function (row) {
        return {
          attr: row.querySelector("[data-attr]").value,
          op: row.querySelector("[data-op]").value,
          value: row.querySelector("[data-value]").value
        };
      });
    }

    function fromRows() {
      var current = rows();
      var condition = compile(current);
      textarea.value = condition ? JSON.stringify(condition, null, 2) : "";
      summary.textContent = describe(current);
    }

    function shapeRow(row) {
      var op = row.querySelector("[data-op]").value;
      var attr = row.querySelector("[data-attr]");
      var value = row.querySelector("[data-value]");
      attr.hidden = op === "segment";
      value.hidden = op === "exists";
      if (op === "segment") value.setAttribute("list", listId); else value.removeAttribute("list");
      value.placeholder = { "in": "a, b, c", nin: "a, b, c", segment: "segment key", regex: "^acme-" }[op] || "value";
    }

    function addRow(data) {
      var row = element("div", { className: "um-cond-row" });
      row.appendChild(element("span", { className: "um-cond-and", textContent: holder.children.length ? "and" : "when" }));
      var attr = element("input", { value: data.attr, placeholder: "attribute (plan)", size: 14 });
      attr.setAttribute("data-attr", "");
      attr.setAttribute("aria-label", "Attribute");
      var op = element("select");
      op.setAttribute("data-op", "");
      op.setAttribute("aria-label", "Operator");
      OPERATORS.forEach(function (o) { op.appendChild(element("option", { value: o[0], textContent: o[1] })); });
      op.value = data.op;
      var value = element("input", { value: data.value, size: 18 });
      value.setAttribute("data-value", "");
      value.setAttribute("aria-label", "Value");
      var remove = element("button", { type: "button", className: "um-secondary", textContent: "×", title: "Remove this condition" });
      remove.setAttribute("aria-label", "Remove this condition");
      remove.addEventListener("click", function () {
        row.remove();
        relabel();
        fromRows();
      });
      [attr, op, value, remove].forEach(function (n) { row.appendChild(n); });
      [attr, value].forEach(function (n) { n.addEventListener("input", fromRows); });
      op.addEventListener("change", function () { shapeRow(row); fromRows(); });
      holder.appendChild(row);
      shapeRow(row);
      return row;
    }

    function relabel() {
      Array.prototype.forEach.call(holder.children, function (row, i) {
        row.querySelector(".um-cond-and").textContent = i ? "and" : "when";
      });
    }

    function fromJson() {
      var text = textarea.value.trim(), condition;
      try {
        condition = text ? JSON.parse(text) : null;
      } catch (e) {
        holder.hidden = add.hidden = true;
        summary.textContent = "the condition below (not valid JSON yet)";
        return;
      }
      var parsed = parseCondition(condition);
      holder.textContent = "";
      if (parsed === null) {
        holder.hidden = add.hidden = true;
        summary.textContent = "the condition below, edited as JSON (too complex for the rows)";
        return;
      }
      holder.hidden = add.hidden = false;
      parsed.forEach(addRow);
      summary.textContent = describe(parsed);
    }

    if (!document.getElementById(listId)) {
      var list = element("datalist", { id: listId });
      segments.forEach(function (s) { list.appendChild(element("option", { value: s })); });
      document.body.appendChild(list);
    }
    add.addEventListener("click", function () {
      addRow({ attr: "", op: "eq", value: "" }).querySelector("[data-attr]").focus();
    });
    textarea.addEventListener("input", fromJson);
    fromJson();
    if (details && !holder.hidden) details.open = false;
  }

  // -- the rule editor -----------------------------------------------------------------------

  function showKind(rule) {
    var kind = rule.querySelector("[data-rule-kind]").value;
    rule.querySelectorAll("[data-for]").forEach(function (node) {
      node.hidden = node.getAttribute("data-for").split(" ").indexOf(kind) < 0;
    });
  }

  function wireRule(rule, editor) {
    var kind = rule.querySelector("[data-rule-kind]");
    var blank = kind.querySelector("option[value='']");
    if (blank) blank.remove();
    kind.addEventListener("change", function () { showKind(rule); });
    showKind(rule);
    var slider = rule.querySelector("[data-coverage]");
    var out = rule.querySelector("[data-coverage-out]");
    var showCoverage = function () { out.textContent = slider.value + "%"; };
    slider.addEventListener("input", showCoverage);
    slider.addEventListener("change", showCoverage);
    showCoverage();
    var tools = rule.querySelector("[data-rule-tools]");
    tools.hidden = false;
    tools.querySelector("[data-rule-up]").addEventListener("click", function () {
      if (rule.previousElementSibling) rule.parentNode.insertBefore(rule, rule.previousElementSibling);
      editor.renumber();
    });
    tools.querySelector("[data-rule-down]").addEventListener("click", function () {
      if (rule.nextElementSibling) rule.parentNode.insertBefore(rule.nextElementSibling, rule);
      editor.renumber();
    });
    tools.querySelector("[data-rule-remove]").addEventListener("click", function () {
      rule.remove();
      editor.renumber();
    });
    wireTargeting(rule, editor.segments);
  }

  function wireRules(form) {
    var holder = form.querySelector("[data-rules]");
    var spare = form.querySelector("[data-spare]");
    var empty = form.querySelector("[data-no-rules]");
    var addButton = form.querySelector("[data-add-rule]");
    var template = spare.cloneNode(true);
    spare.remove();
    var editor = {
      segments: JSON.parse(form.getAttribute("data-segments") || "[]"),
      renumber: function () {
        Array.prototype.forEach.call(holder.children, function (rule, i) {
          rule.querySelector("legend").textContent = "Rule " + (i + 1);
          rule.setAttribute("data-testid", "rule-" + i);
          rule.querySelector("[data-rule-up]").disabled = i === 0;
          rule.querySelector("[data-rule-down]").disabled = i === holder.children.length - 1;
        });
        empty.hidden = holder.children.length > 0;
      }
    };
    Array.prototype.forEach.call(holder.children, function (rule) { wireRule(rule, editor); });
    addButton.hidden = false;
    addButton.addEventListener("click", function () {
      var rule = template.cloneNode(true);
      rule.removeAttribute("data-spare");
      rule.querySelector("[data-rule-kind]").value = "rollout";
      holder.appendChild(rule);
      wireRule(rule, editor);
      editor.renumber();
      rule.querySelector("[data-rule-kind]").focus();
    });
    editor.renumber();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-switch]").forEach(wireSwitch);
    var type = document.querySelector("[data-value-type]");
    if (type) wireValueType(type);
    var rules = document.querySelector("form[data-rules-form]");
    if (rules) wireRules(rules);
  });
})();
