// "Try it": stream a chat completion through the gateway and time it.

import { authHeaders } from "./api.js";
import { $, fmtMs, fmtNumber } from "./dom.js";

/** Yields each `data:` payload of a server-sent-events body. */
async function* sseData(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, end).replace(/\r$/, "");
      buffer = buffer.slice(end + 1);
      if (line.startsWith("data:")) yield line.slice(5).trim();
    }
  }
}

export class TryPanel {
  constructor() {
    this.form = $("try-form");
    this.controller = null;
    this.form.addEventListener("submit", (event) => { event.preventDefault(); this.send(); });
    $("try-stop").addEventListener("click", () => this.controller && this.controller.abort());
  }

  setModels(names) {
    if (!$("try-model").value && names.length) $("try-model").value = names[0];
    $("try-models").replaceChildren(...names.map((name) => {
      const option = document.createElement("option");
      option.value = name;
      return option;
    }));
  }

  choose(model) {
    $("try-model").value = model;
    $("try-panel").scrollIntoView({ behavior: "smooth", block: "nearest" });
    $("try-prompt").focus();
  }

  reset() {
    for (const id of ["try-backend", "try-ttft", "try-tps", "try-tokens"]) $(id).textContent = "—";
    $("try-output").textContent = "";
    $("try-error").textContent = "";
  }

  async send() {
    this.reset();
    const output = $("try-output");
    const body = {
      model: $("try-model").value.trim(),
      messages: [{ role: "user", content: $("try-prompt").value }],
      stream: true,
    };
    const maxTokens = Number($("try-max-tokens").value);
    if (maxTokens > 0) body.max_tokens = maxTokens;
    this.controller = new AbortController();
    $("try-send").disabled = true;
    $("try-stop").disabled = false;
    const started = performance.now();
    let first = null;
    let tokens = 0;
    try {
      const response = await fetch("/v1/chat/completions", {
        method: "POST",
        headers: authHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify(body),
        signal: this.controller.signal,
      });
      const fallbackFrom = response.headers.get("x-llm-fallback-from");
      const endpoint = response.headers.get("x-llm-endpoint");
      $("try-backend").textContent = (response.headers.get("x-llm-backend") || "—")
        + (endpoint ? ` · ${endpoint}` : "")
        + (fallbackFrom ? ` (after ${fallbackFrom} failed)` : "");
      if (!response.ok) {
        const text = await response.text();
        let message = text;
        try { const parsed = JSON.parse(text); message = parsed.error?.message || parsed.detail || text; } catch { /* text */ }
        throw new Error(`${response.status}: ${message}`);
      }
      for await (const data of sseData(response)) {
        if (data === "[DONE]") break;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || JSON.stringify(chunk.error));
        const text = chunk.choices?.[0]?.delta?.content;
        if (!text) continue;
        if (first === null) {
          first = performance.now();
          $("try-ttft").textContent = fmtMs(first - started);
        }
        tokens += 1;
        output.append(document.createTextNode(text));
        $("try-tokens").textContent = String(tokens);
        const seconds = (performance.now() - first) / 1000;
        if (tokens > 1 && seconds > 0) $("try-tps").textContent = fmtNumber((tokens - 1) / seconds, 1);
      }
      if (tokens === 1) $("try-tps").textContent = "—";
      output.dataset.done = "true";
    } catch (error) {
      if (error.name !== "AbortError") $("try-error").textContent = error.message || String(error);
    } finally {
      $("try-send").disabled = false;
      $("try-stop").disabled = true;
      this.controller = null;
    }
  }
}
