"""The review page's style and script (inline in the one HTML file `report.py` writes).

The script needs nothing from a network: the pictures are data URIs in the page, the viewer
draws the side-by-side, flicker and difference views on canvases from them (a data URI does not
taint a canvas), aligning the copy on the kept copy first (the region of the kept frame a crop
shows, and the rotation or flip, of the 8, that makes the two most alike).
"""

from __future__ import annotations

PAGE_STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;background:#f1f1ee;color:#222}
header{position:sticky;top:0;background:#1f2328;color:#fff;padding:8px 16px;display:flex;gap:10px;
align-items:center;flex-wrap:wrap;z-index:2}
header h1{font-size:17px;margin:0 8px 0 0}
button{font:inherit;font-size:13px;padding:5px 9px;border-radius:4px;border:1px solid #bbb;
background:#fff;color:#222;cursor:pointer}
header button{border-color:#555}
.chips{display:flex;gap:6px;flex-wrap:wrap}
.chip{color:#fff;text-decoration:none;border-radius:12px;padding:2px 10px;font-size:13px}
.chip b{margin-left:4px}
.t-files{--tier:#1b7f4c}.t-pixels{--tier:#2f6fb3}.t-near{--tier:#8a5cb8}.t-edited{--tier:#c2571a}
.t-unverified,.t-other{--tier:#6b6b6b}
.chip,.tier{background:var(--tier)}
#count{font-variant-numeric:tabular-nums}
#help{background:#fffbe6;border-bottom:1px solid #e6d98a;padding:8px 16px;font-size:13px}
#help kbd,.hint kbd{background:#eee;border:1px solid #bbb;border-radius:3px;padding:0 4px;color:#222}
.hint{font-size:12px;color:#ccc}
section.group,figure.member{scroll-margin-top:110px}
section.group{background:#fff;margin:14px;padding:10px 12px 12px;border-radius:6px;
box-shadow:0 1px 3px #0002;border-left:6px solid var(--tier)}
section.group.current{box-shadow:0 0 0 2px #f5b400,0 1px 3px #0002}
section.group h2{font-size:15px;margin:0 0 4px;display:flex;gap:8px;align-items:baseline;flex-wrap:wrap}
.tier{color:#fff;border-radius:3px;padding:1px 7px;font-size:12px;text-transform:uppercase;
letter-spacing:.03em}
.summary{font-size:13px;color:#555;margin:0 0 10px}
.similar{font-size:12px;color:#777;margin:8px 0 0}
.members{display:flex;gap:14px;flex-wrap:wrap;align-items:flex-start}
figure.member{margin:0;width:300px;font-size:12.5px;border:2px solid transparent;border-radius:6px;
padding:4px}
figure.member.focus{border-color:#f5b400;background:#fffbe6}
figure.member.extra{display:none}
section.open figure.member.extra{display:block}
.thumb{display:block;padding:0;border:0;background:#e9e9e6;width:288px;height:288px;cursor:zoom-in}
.thumb img,.missing{width:288px;height:288px;object-fit:contain;display:block}
.missing{display:flex;align-items:center;justify-content:center;color:#888}
figure.best .thumb{outline:3px solid #1b7f4c}
figcaption{margin-top:5px;display:flex;flex-direction:column;gap:2px}
.badge{border-radius:3px;padding:1px 6px;color:#fff;font-size:12px;align-self:flex-start}
.keep{background:#1b7f4c}
.rel{background:#2f6fb3}.rel.unsafe{background:#c2571a}
.match{color:#333}
.match b{font-weight:600}
.name{font-weight:600;overflow-wrap:anywhere}
.dir{color:#666;overflow-wrap:anywhere;font-size:12px}
.facts{color:#444}
.tools{display:flex;gap:4px;flex-wrap:wrap;align-items:center;margin-top:3px}
.tools button{font-size:12px;padding:2px 6px}
.choice{margin-right:4px;white-space:nowrap}
.note{color:#a34a12;font-size:12px}
.id{color:#777}
.expand{align-self:center;height:60px}
#viewer{position:fixed;inset:0;background:#161616;color:#eee;z-index:5;display:flex;flex-direction:column}
#viewer[hidden]{display:none}
#viewer .bar{display:flex;gap:8px;align-items:center;padding:8px 12px;flex-wrap:wrap;background:#000}
#viewer .bar button.on{background:#f5b400;border-color:#f5b400}
#viewer .title{flex:1;min-width:200px;overflow-wrap:anywhere}
#stage{flex:1;display:flex;gap:12px;align-items:center;justify-content:center;padding:12px;overflow:auto}
#stage figure{margin:0;display:flex;flex-direction:column;align-items:center;min-width:0;flex:1 1 0}
#stage figure.single{flex:1 1 auto}
#stage img,#stage canvas{width:100%;height:calc(100vh - 170px);object-fit:contain;display:block}
#stage figcaption{color:#ddd;font-size:13px;text-align:center;overflow-wrap:anywhere;max-width:60ch}
#stage .label{font-size:15px;font-weight:600;color:#f5b400}
"""

PAGE_SCRIPT = """
const TRASH_SCRIPT = __TRASH_SCRIPT__;
const groups = Array.from(document.querySelectorAll('section.group'));
let cur = {g: groups.length ? 0 : -1, m: 1};
let view = {open: false, mode: 'enlarge', timer: null};

function picked() { return Array.from(document.querySelectorAll('input.pick:checked')); }
function chosen() { return picked().map(e => e.dataset.path); }
function download(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], {type: type}));
  a.download = name;
  a.click();
}
function exportScript() {
  const rows = [];
  for (const e of picked()) {
    const d = e.dataset;
    const hex = /^([0-9a-f]{2})+$/.test(d.hex), sha = /^[0-9a-f]{64}$/.test(d.sha256);
    if (!hex || !sha || !/^[0-9]+$/.test(d.size)) continue;
    rows.push('    (bytes.fromhex("' + d.hex + '"), ' + d.size + ', "' + d.sha256 + '"),');
  }
  const head = ['#!/usr/bin/env python3',
    '# Files chosen in the lookalike review page. Each one still as it was indexed (same size and',
    '# sha256) is moved to the trash (send2trash; run with the Python lookalike is installed in),',
    '# or deleted for good with --delete. Anything else is left alone and reported.',
    'FILES = ['].concat(rows, [']']);
  download('lookalike-trash.py', head.join('\\n') + '\\n' + TRASH_SCRIPT, 'text/x-python');
}
function exportJson() {
  download('lookalike-delete.json', JSON.stringify({"delete": chosen()}, null, 1), 'application/json');
}
function setAll(v) {
  document.querySelectorAll('figure:not(.best) input.pick').forEach(e => e.checked = v);
  count();
}
function chooseSafe() {
  document.querySelectorAll('figure:not(.best) input.pick').forEach(e => e.checked = e.dataset.safe === '1');
  count();
}
function count() {
  const all = document.querySelectorAll('input.pick').length;
  document.getElementById('count').textContent = chosen().length + ' of ' + all + ' files chosen';
  for (const g of groups) {
    const b = g.querySelector('.expand');
    if (b) b.querySelector('.chosen').textContent = g.querySelectorAll('.extra input.pick:checked').length;
  }
}
function members(g) { return Array.from(groups[g].querySelectorAll('figure.member')); }
function focusMember(g, m, scroll) {
  if (g < 0 || g >= groups.length) return;
  const list = members(g);
  m = Math.max(0, Math.min(m, list.length - 1));
  document.querySelectorAll('.focus').forEach(e => e.classList.remove('focus'));
  document.querySelectorAll('section.current').forEach(e => e.classList.remove('current'));
  groups[g].classList.add('current');
  if (list[m].classList.contains('extra')) groups[g].classList.add('open');
  list[m].classList.add('focus');
  cur = {g: g, m: m};
  if (scroll) list[m].scrollIntoView({block: 'nearest'});
  if (scroll && m <= 1) groups[g].scrollIntoView({block: 'start'});
  if (view.open) show();
}
function nextGroup(step) {
  const g = Math.max(0, Math.min(cur.g + step, groups.length - 1));
  focusMember(g, members(g).length > 1 ? 1 : 0, true);
}
function toggle() {
  const box = members(cur.g)[cur.m].querySelector('input.pick');
  if (box) { box.checked = !box.checked; count(); }
  if (view.open) show();
}
function expand(button) {
  const g = button.closest('section.group');
  g.classList.toggle('open');
  button.querySelector('.verb').textContent = g.classList.contains('open') ? 'hide' : 'show';
}

function load(src) {
  return new Promise(resolve => { const i = new Image(); i.onload = () => resolve(i); i.src = src; });
}
function canvasOf(w, h) {
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  c.getContext('2d').imageSmoothingQuality = 'high';
  return c;
}
// The copy drawn in the kept copy's frame: the region of the kept frame it shows (a crop), and
// the rotation/flip (of 8) that makes it most like the kept copy, judged on 32x32 thumbnails.
const DIHEDRAL = [[0, false], [1, false], [2, false], [3, false], [0, true], [1, true], [2, true], [3, true]];
function drawTurned(ctx, img, w, h, turn, mirror) {
  ctx.save();
  ctx.translate(w / 2, h / 2);
  ctx.rotate(turn * Math.PI / 2);
  if (mirror) ctx.scale(-1, 1);
  const odd = turn % 2 === 1;
  const dw = odd ? h : w, dh = odd ? w : h;
  ctx.drawImage(img, -dw / 2, -dh / 2, dw, dh);
  ctx.restore();
}
function grey(canvas) {
  const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const out = new Float32Array(d.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = 0.299 * d[4*i] + 0.587 * d[4*i+1] + 0.114 * d[4*i+2];
  return out;
}
async function aligned(kept, copy, region, shown) {
  const a = await load(kept.src);
  let b = await load(copy.src);
  if (shown) {  // the part of the copy that shows the kept picture (a screenshot's photo, a cell)
    const bw = b.naturalWidth, bh = b.naturalHeight;
    const pw = Math.max(1, Math.round((shown[2] - shown[0]) * bw));
    const ph = Math.max(1, Math.round((shown[3] - shown[1]) * bh));
    const part = canvasOf(pw, ph);
    part.getContext('2d').drawImage(b, shown[0] * bw, shown[1] * bh, pw, ph, 0, 0, pw, ph);
    part.naturalWidth = pw; part.naturalHeight = ph;
    b = part;
  }
  let sx = 0, sy = 0, sw = a.naturalWidth, sh = a.naturalHeight;
  if (region) {
    sx = region[0] * sw; sy = region[1] * sh;
    sw = (region[2] - region[0]) * a.naturalWidth; sh = (region[3] - region[1]) * a.naturalHeight;
  }
  // At the common size, the smaller picture's: detail one of them never had is not a difference.
  const scale = Math.min(1, 900 / Math.max(sw, sh), Math.sqrt(b.naturalWidth * b.naturalHeight / (sw * sh)));
  const w = Math.max(1, Math.round(sw * scale)), h = Math.max(1, Math.round(sh * scale));
  const keptCanvas = canvasOf(w, h);
  keptCanvas.getContext('2d').drawImage(a, sx, sy, sw, sh, 0, 0, w, h);
  const small = canvasOf(32, 32);
  small.getContext('2d').drawImage(keptCanvas, 0, 0, 32, 32);
  const target = grey(small);
  let best = null;
  for (const [turn, mirror] of DIHEDRAL) {
    const probe = canvasOf(32, 32);
    drawTurned(probe.getContext('2d'), b, 32, 32, turn, mirror);
    const g = grey(probe);
    let err = 0;
    for (let i = 0; i < g.length; i++) err += Math.abs(g[i] - target[i]);
    if (best === null || err < best.err * 0.9) best = {err: err, turn: turn, mirror: mirror};
  }
  const copyCanvas = canvasOf(w, h);
  drawTurned(copyCanvas.getContext('2d'), b, w, h, best.turn, best.mirror);
  const turned = (best.turn ? 'turned ' + (90 * best.turn) + '°' : '') + (best.mirror ? ' mirrored' : '');
  return {kept: keptCanvas, copy: copyCanvas, how: turned.trim()};
}
function difference(pair) {
  const w = pair.kept.width, h = pair.kept.height;
  const a = pair.kept.getContext('2d').getImageData(0, 0, w, h).data;
  const b = pair.copy.getContext('2d').getImageData(0, 0, w, h).data;
  const out = canvasOf(w, h), ctx = out.getContext('2d'), img = ctx.createImageData(w, h);
  let total = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(a[i + c] - b[i + c]);
      total += d;
      img.data[i + c] = Math.min(255, d * 4);
    }
    img.data[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return {canvas: out, mean: total / (w * h * 3)};
}

function info(fig) {
  const d = fig.dataset;
  const parts = [d.name, d.facts];
  if (d.relation) parts.push(d.relation);
  if (d.match) parts.push(d.match);
  return parts.filter(Boolean).join(' · ');
}
function caption(fig, label) {
  const c = document.createElement('figcaption');
  const l = document.createElement('div');
  l.className = 'label'; l.textContent = label;
  const t = document.createElement('div');
  t.textContent = info(fig);
  c.append(l, t);
  return c;
}
function panel(node, fig, label, single) {
  const f = document.createElement('figure');
  if (single) f.className = 'single';
  f.append(node, caption(fig, label));
  return f;
}
function imageOf(fig) {
  const img = fig.querySelector('.thumb img');
  const copy = document.createElement('img');
  if (img) copy.src = img.src;
  copy.alt = fig.dataset.name || '';
  return copy;
}
async function show() {
  const list = members(cur.g), fig = list[cur.m], kept = list[0];
  const stage = document.getElementById('stage');
  clearInterval(view.timer);
  for (const b of document.querySelectorAll('#viewer .mode')) {
    b.classList.toggle('on', b.dataset.mode === view.mode);
  }
  const box = fig.querySelector('input.pick');
  const state = [fig.classList.contains('best') ? 'kept copy' : '',
    box ? (box.checked ? 'chosen for the trash' : 'not chosen') : ''].filter(Boolean).join(', ');
  document.getElementById('view-title').textContent =
    'group ' + (cur.g + 1) + ', ' + (cur.m + 1) + ' of ' + list.length + ': ' + (fig.dataset.name || '') +
    (state ? ' (' + state + ')' : '');
  const original = document.getElementById('view-original');
  original.hidden = !fig.dataset.uri;
  original.href = fig.dataset.uri || '#';
  stage.replaceChildren();
  const label = fig.classList.contains('best') ? 'kept copy' : 'copy';
  const pictures = fig.querySelector('.thumb img') && kept.querySelector('.thumb img');
  if (view.mode === 'enlarge' || fig === kept || !pictures) {
    stage.append(panel(imageOf(fig), fig, label, true));
    return;
  }
  if (view.mode === 'side') {
    stage.append(panel(imageOf(kept), kept, 'kept copy'), panel(imageOf(fig), fig, 'copy'));
    return;
  }
  const token = {};
  view.token = token;
  const region = fig.dataset.region ? fig.dataset.region.split(',').map(Number) : null;
  const shown = fig.dataset.shown ? fig.dataset.shown.split(',').map(Number) : null;
  const pair = await aligned(
    kept.querySelector('.thumb img'), fig.querySelector('.thumb img'), region, shown);
  if (view.token !== token) return;
  const compared = shown ? 'the part of the copy that shows it'
    : region ? 'the region of the kept copy it shows' : 'the kept frame';
  const note = compared + (pair.how ? ', copy ' + pair.how : '');
  if (view.mode === 'flicker') {
    const shown = canvasOf(pair.kept.width, pair.kept.height), ctx = shown.getContext('2d');
    const f = panel(shown, fig, '', true);
    const l = f.querySelector('.label');
    let which = false;
    const flip = () => {
      which = !which;
      ctx.drawImage(which ? pair.kept : pair.copy, 0, 0);
      l.textContent = (which ? 'kept copy' : 'copy') + ' (flicker; ' + note + ')';
    };
    flip();
    view.timer = setInterval(flip, 600);
    stage.append(f);
  } else {
    const diff = difference(pair);
    diff.canvas.className = 'diff';
    stage.append(panel(diff.canvas, fig,
      'difference x4: mean ' + diff.mean.toFixed(1) + ' levels of 255 (' + note + ')', true));
  }
}
function openViewer(mode) {
  if (cur.g < 0) return;
  view.open = true;
  view.mode = mode;
  document.getElementById('viewer').hidden = false;
  show();
}
function closeViewer() {
  view.open = false;
  clearInterval(view.timer);
  document.getElementById('viewer').hidden = true;
  members(cur.g)[cur.m].scrollIntoView({block: 'nearest'});
}
function step(delta) {
  const list = members(cur.g);
  focusMember(cur.g, (cur.m + delta + list.length) % list.length, true);
}

const KEYS = {
  'j': () => nextGroup(1), 'n': () => nextGroup(1), 'k': () => nextGroup(-1), 'p': () => nextGroup(-1),
  'ArrowRight': () => step(1), 'l': () => step(1), 'ArrowLeft': () => step(-1), 'h': () => step(-1),
  'x': toggle, ' ': toggle,
  'Enter': () => openViewer('enlarge'), 'e': () => openViewer('enlarge'), '1': () => openViewer('enlarge'),
  's': () => openViewer('side'), '2': () => openViewer('side'),
  'f': () => openViewer('flicker'), '3': () => openViewer('flicker'),
  'd': () => openViewer('diff'), '4': () => openViewer('diff'),
  'Escape': () => view.open ? closeViewer() : null,
  '?': () => { const h = document.getElementById('help'); h.hidden = !h.hidden; },
};
document.addEventListener('keydown', e => {
  if (e.ctrlKey || e.metaKey || e.altKey || cur.g < 0) return;
  if (e.target.tagName === 'INPUT' && e.key !== 'Escape' && e.key !== ' ' && e.key !== 'x') return;
  const act = KEYS[e.key];
  if (!act) return;
  e.preventDefault();
  act();
});
document.addEventListener('click', e => {
  const fig = e.target.closest('figure.member');
  if (!fig) return;
  const g = groups.indexOf(fig.closest('section.group'));
  const m = members(g).indexOf(fig);
  const mode = e.target.closest('[data-open]');
  if (mode) { focusMember(g, m, false); openViewer(mode.dataset.open); return; }
  if (!view.open) focusMember(g, m, false);
});
document.addEventListener('change', count);
window.addEventListener('load', () => {
  count();
  if (groups.length) focusMember(0, members(0).length > 1 ? 1 : 0, false);
});
"""
