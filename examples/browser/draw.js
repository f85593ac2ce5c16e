// Drawing detections, shared by examples/browser/index.html (detection) and train.html (its Detect panel):
// the image fitted into a view with the boxes and their labels, and the list of detections as table rows.
// `dets` are Model.detect's results: { box: {x1, y1, x2, y2} in image pixels, classId, name, score }.
const COLORS = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#0fa3b1', '#f032e6', '#7a9a01', '#9a6324', '#800000'];
export const color = (id) => COLORS[id % COLORS.length];

/**
 * Draws `bitmap` fitted into the canvas's parent `wrap` (at most `maxH` CSS pixels high; labels keep their size
 * whatever the image's), then the boxes, then their labels.
 */
export function drawDetections(canvas, wrap, bitmap, dets, maxH = Math.max(240, Math.min(innerHeight * 0.62, 720))) {
  const c = canvas;
  const maxW = Math.max(200, wrap.clientWidth);
  const s = Math.min(maxW / bitmap.width, maxH / bitmap.height);
  const dpr = devicePixelRatio || 1;
  const w = Math.round(bitmap.width * s), h = Math.round(bitmap.height * s);
  c.width = Math.round(w * dpr);
  c.height = Math.round(h * dpr);
  c.style.width = `${w}px`;
  c.style.height = `${h}px`;
  const g = c.getContext('2d');
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.imageSmoothingEnabled = s < 2; // a small image enlarged shows its pixels
  g.drawImage(bitmap, 0, 0, w, h);
  g.font = '600 12px system-ui, "DejaVu Sans", sans-serif';
  g.textBaseline = 'middle';
  const placed = []; // label rectangles drawn so far
  const hits = (x, y, lw, lh) => placed.some((r) => x < r.x + r.w && r.x < x + lw && y < r.y + r.h && r.y < y + lh);
  g.lineWidth = 2;
  for (const d of dets) {
    g.strokeStyle = color(d.classId);
    g.strokeRect(d.box.x1 * s, d.box.y1 * s, (d.box.x2 - d.box.x1) * s, (d.box.y2 - d.box.y1) * s);
  }
  for (const d of dets) { // labels over all boxes; the best first keeps its place
    const col = color(d.classId);
    const x1 = d.box.x1 * s, y1 = d.box.y1 * s;
    const label = `${d.name} ${(d.score * 100).toFixed(0)}%`;
    const tw = g.measureText(label).width + 8, th = 17;
    const lx = Math.min(Math.max(0, x1 - 1), w - tw);
    // above the box, else inside its top or its bottom; a label that would cover another is left out (its box stays)
    const ly = [y1 - th, y1, d.box.y2 * s - th].map((y) => Math.min(Math.max(0, y), h - th)).find((y) => !hits(lx, y, tw, th));
    if (ly === undefined) continue;
    placed.push({ x: lx, y: ly, w: tw, h: th });
    g.fillStyle = col;
    g.fillRect(lx, ly, tw, th);
    g.fillStyle = '#fff';
    g.fillText(label, lx + 4, ly + th / 2 + 0.5);
  }
}

/** Fills `tbody` with one row per detection (the first `shown`; `more` names where the rest are). */
export function listDetections(tbody, dets, { shown = 50, more = 'window.__yolo.detections' } = {}) {
  const esc = (s) => String(s).replace(/[&<>]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;' })[ch]);
  tbody.innerHTML = dets.length === 0 ? '<tr><td colspan="3" class="muted">no detections above conf</td></tr>'
    : dets.slice(0, shown).map((d) => `<tr><td><span class="swatch" style="background:${color(d.classId)}"></span></td><td>${esc(d.name)} ${(d.score * 100).toFixed(1)}%</td>`
      + `<td class="muted">[${[d.box.x1, d.box.y1, d.box.x2, d.box.y2].map((v) => v.toFixed(1)).join(', ')}]</td></tr>`).join('')
      + (dets.length > shown ? `<tr><td></td><td colspan="2" class="muted">… and ${dets.length - shown} more (all in ${more})</td></tr>` : '');
}
