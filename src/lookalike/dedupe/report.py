"""A self-contained HTML page to review duplicate groups side by side and choose what to delete.

One file, no network: thumbnails are inlined as data URIs, styles and script are inline. Each
group shows its members (best copy first) with resolution, file size and distance to the best
copy; a checkbox per file feeds two exports, a shell script and a JSON list of the chosen files.
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from lookalike.dedupe.grouping import Group
from lookalike.index.base import Entry

THUMBNAIL_SIDE = 200


@dataclass(frozen=True)
class ReportMember:
    key: str
    path: str
    width: int | None
    height: int | None
    byte_size: int | None
    distance: int | None
    best: bool
    thumbnail: str | None  # data URI


def thumbnail_data_uri(path: str, side: int = THUMBNAIL_SIDE) -> str | None:
    """A small JPEG of the image as a data URI, or None if it cannot be read."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side * 2, side * 2))
            image = ImageOps.exif_transpose(image) or image
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=70)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _path_of(entry: Entry) -> str:
    path = entry.metadata.get("path") if entry.metadata else None
    return str(path) if path else entry.key


def build_members(
    group: Group, thumbnails: Callable[[str], str | None] = thumbnail_data_uri
) -> list[ReportMember]:
    best = group.best.key
    members = []
    for index, entry in enumerate(group.members):
        distance = (
            0
            if index == 0
            else group.distances.get((best, entry.key), group.distances.get((entry.key, best)))
        )
        path = _path_of(entry)
        members.append(
            ReportMember(
                key=entry.key,
                path=path,
                width=entry.width,
                height=entry.height,
                byte_size=entry.byte_size,
                distance=distance,
                best=index == 0,
                thumbnail=thumbnails(path),
            )
        )
    return members


def _size_text(byte_size: int | None) -> str:
    if byte_size is None:
        return "? bytes"
    size = float(byte_size)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{byte_size} B"


def _member_html(group_number: int, member: ReportMember) -> str:
    esc = html.escape
    image = (
        f'<img src="{member.thumbnail}" alt="{esc(os.path.basename(member.path))}" loading="lazy">'
        if member.thumbnail
        else '<div class="missing">no preview</div>'
    )
    resolution = f"{member.width}×{member.height}" if member.width and member.height else "?"
    if member.best:
        badge = '<span class="badge">best copy</span>'
    elif member.distance is None:
        badge = "matched through another copy"
    else:
        badge = f"distance {member.distance}"
    checked = "" if member.best else " checked"
    return (
        f'<figure class="member{" best" if member.best else ""}">{image}'
        f'<figcaption><label><input type=checkbox class=pick data-path="{esc(member.path)}"{checked}>'
        f' delete</label><div class=path title="{esc(member.path)}">{esc(member.path)}</div>'
        f"<div>{resolution} · {_size_text(member.byte_size)}</div><div>{badge}</div></figcaption></figure>"
    )


PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f4f2;color:#222}
header{position:sticky;top:0;background:#222;color:#fff;padding:10px 16px;display:flex;gap:12px;
align-items:center;flex-wrap:wrap;z-index:1}
header h1{font-size:18px;margin:0 12px 0 0}
button{font-size:14px;padding:6px 10px;border-radius:4px;border:0;cursor:pointer}
section.group{background:#fff;margin:14px;padding:10px 12px;border-radius:6px;box-shadow:0 1px 3px #0002}
section.group h2{font-size:15px;margin:0 0 8px}
.members{display:flex;gap:12px;flex-wrap:wrap}
figure.member{margin:0;width:230px;font-size:12px}
figure.member img,.missing{width:220px;height:220px;object-fit:contain;background:#eee;display:block}
.missing{display:flex;align-items:center;justify-content:center;color:#888}
figure.best img{outline:3px solid #2a7}
.badge{background:#2a7;color:#fff;border-radius:3px;padding:1px 5px}
.path{word-break:break-all;color:#555}
"""

PAGE_SCRIPT = """
function chosen() {
  return Array.from(document.querySelectorAll('input.pick:checked')).map(e => e.dataset.path);
}
function quote(p) { return "'" + p.replace(/'/g, "'\\\\''") + "'"; }
function download(name, text, type) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([text], {type: type}));
  a.download = name;
  a.click();
}
function exportShell() {
  const lines = ['#!/bin/sh', '# files chosen for deletion in the lookalike report', 'set -e'];
  for (const p of chosen()) { lines.push('rm -- ' + quote(p)); }
  download('lookalike-delete.sh', lines.join('\\n') + '\\n', 'text/x-sh');
}
function exportJson() {
  download('lookalike-delete.json', JSON.stringify({"delete": chosen()}, null, 1), 'application/json');
}
function setAll(v) {
  document.querySelectorAll('figure:not(.best) input.pick').forEach(e => e.checked = v);
  count();
}
function count() { document.getElementById('count').textContent = chosen().length + ' chosen'; }
document.addEventListener('change', count);
window.addEventListener('load', count);
"""


def render_report(
    groups: Sequence[Group],
    title: str = "lookalike: duplicate groups",
    thumbnails: Callable[[str], str | None] = thumbnail_data_uri,
) -> str:
    """The whole HTML page for `groups` as a string."""
    sections = []
    total_files = 0
    for number, group in enumerate(groups, start=1):
        members = build_members(group, thumbnails)
        total_files += len(members)
        body = "".join(_member_html(number, m) for m in members)
        sections.append(
            f'<section class="group" id="group-{number}"><h2>Group {number} · {len(members)} images</h2>'
            f'<div class="members">{body}</div></section>'
        )
    summary = f"{len(groups)} groups, {total_files} images"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><span>{summary}</span><span id=count></span>"
        '<button onclick="setAll(true)">choose all duplicates</button>'
        '<button onclick="setAll(false)">clear</button>'
        '<button onclick="exportShell()">export shell script</button>'
        '<button onclick="exportJson()">export JSON</button></header>'
        + ("".join(sections) or "<p style='margin:16px'>No duplicate groups found.</p>")
        + f"<script>{PAGE_SCRIPT}</script></body></html>"
    )


def write_report(groups: Sequence[Group], target: str | os.PathLike[str], **options: object) -> str:
    """Write the page; returns its absolute path."""
    page = render_report(groups, **options)  # type: ignore[arg-type]
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(page)
    return os.path.abspath(target)
