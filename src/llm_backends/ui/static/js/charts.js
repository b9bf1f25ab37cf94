// Small inline SVG charts drawn by hand: a bar per minute, no library.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  return node;
}

/**
 * A sparkline of `values` (null = no data), bars for counts or a line for latency.
 * The SVG's <title> gives the peak, for a tooltip.
 */
export function sparkline(values, { kind = "bars", color = "#2f6fed", width = 64, height = 24,
                                    title = "" } = {}) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
                            class: "sparkline" });
  const present = values.filter((v) => v !== null && v !== undefined);
  const peak = Math.max(0, ...present);
  const label = svg("title", {});
  label.textContent = title;
  root.append(label);
  root.append(svg("line", { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5,
                            stroke: "#e3e6ec", "stroke-width": 1 }));
  if (peak <= 0) return root;
  const step = width / values.length;
  const y = (v) => height - 1 - (v / peak) * (height - 3);
  if (kind === "bars") {
    values.forEach((v, i) => {
      if (!v) return;
      const top = y(v);
      root.append(svg("rect", { x: (i * step).toFixed(2), y: top.toFixed(2),
                                width: Math.max(step - 0.3, 1.5).toFixed(2),
                                height: (height - 1 - top).toFixed(2), fill: color }));
    });
    return root;
  }
  let path = "";
  let open = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) { open = false; return; }
    const x = (i * step + step / 2).toFixed(2);
    path += `${open ? "L" : "M"}${x} ${y(v).toFixed(2)} `;
    open = true;
  });
  root.append(svg("path", { d: path.trim(), fill: "none", stroke: color, "stroke-width": 1.5,
                            "stroke-linejoin": "round" }));
  return root;
}
