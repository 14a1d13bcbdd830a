"""A self-contained HTML page to review duplicate groups side by side and choose what to delete.

One file, no network: thumbnails are inlined as data URIs, styles and script are inline. Each
group shows its members (best copy first) with resolution, file size and distance to the best
copy; a checkbox per file feeds two exports, a Python script and a JSON list of the chosen files.

Only files the command line indexed from disk (origin FROM_FILE) get a preview and a checkbox: an
id sent over HTTP, or a `path` in metadata, is shown as text and never names a file. The script
carries each chosen file's exact name as hex bytes (no quoting to get wrong, whatever a name
holds: quotes, a carriage return, bytes that are not UTF-8) with the size and sha256 it was
indexed with; it moves a file to the platform's trash (send2trash) only if it is unchanged, and
deletes it for good only when run with --delete.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps

from lookalike.dedupe.grouping import Group
from lookalike.dedupe.relations import Relation
from lookalike.discover import key_path, path_text
from lookalike.index.base import FROM_FILE, Entry

THUMBNAIL_SIDE = 200


@dataclass(frozen=True)
class ReportMember:
    key: str
    path: str | None  # the file, for entries indexed from disk; None for ids
    width: int | None
    height: int | None
    byte_size: int | None
    distance: int | None
    best: bool
    thumbnail: str | None  # data URI
    sha256: str | None = None
    relation: Relation | None = None  # to the kept copy (None for the kept copy, or unverified groups)
    selected: bool = False  # pre-selected for removal: a safe copy, or any copy with include_edited


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


def _path_of(entry: Entry) -> str | None:
    """The file an entry names: only `index add` makes such entries (metadata is never trusted)."""
    return key_path(entry.key) if entry.origin == FROM_FILE else None


def build_members(
    group: Group, thumbnails: Callable[[str], str | None] = thumbnail_data_uri, include_edited: bool = False
) -> list[ReportMember]:
    """The group's members as the page shows them: kept copy first, each with its relation and
    whether it is pre-selected (only copies that lose nothing, unless `include_edited`)."""
    best = group.best.key
    selected = {entry.key for entry in group.selected(include_edited)}
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
                thumbnail=thumbnails(path) if path is not None else None,
                sha256=entry.sha256,
                relation=group.relations.get(entry.key),
                selected=entry.key in selected,
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
    shown = path_text(member.path) if member.path is not None else member.key
    image = (
        f'<img src="{member.thumbnail}" alt="{esc(os.path.basename(shown))}" loading="lazy">'
        if member.thumbnail
        else '<div class="missing">no preview</div>'
    )
    resolution = f"{member.width}×{member.height}" if member.width and member.height else "?"
    if member.best:
        badge = '<span class="badge">best copy</span>'
    elif member.relation is not None:
        badge = esc(member.relation.describe())
    elif member.distance is None:
        badge = "matched through another copy"
    else:
        badge = f"distance {member.distance}"
    return (
        f'<figure class="member{" best" if member.best else ""}">{image}'
        f'<figcaption>{_pick_html(member)}<div class=path title="{esc(shown)}">{esc(shown)}</div>'
        f"<div>{resolution} · {_size_text(member.byte_size)}</div><div>{badge}</div></figcaption></figure>"
    )


def _pick_html(member: ReportMember) -> str:
    """The checkbox that puts a file in the exports: only for files indexed from disk, with the
    exact name as hex and the size and sha256 the script checks before touching it."""
    if member.path is None or member.sha256 is None or member.byte_size is None:
        return '<span class="id">an id, not a file: nothing to delete</span>'
    checked = " checked" if member.selected else ""
    return (
        f'<label><input type=checkbox class=pick data-path="{html.escape(path_text(member.path))}"'
        f' data-hex="{os.fsencode(member.path).hex()}" data-size="{int(member.byte_size)}"'
        f' data-sha256="{html.escape(member.sha256)}"{checked}> delete</label>'
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

# The script the page exports: a header listing the chosen files (built by the page) + this body.
TRASH_SCRIPT = """
import hashlib
import os
import stat
import sys


def problem(path, size, sha256):
    try:
        info = os.lstat(path)
    except OSError as exc:
        return exc.strerror or "cannot be read"
    if not stat.S_ISREG(info.st_mode):
        return "is no longer a regular file"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if info.st_size != size or digest.hexdigest() != sha256:
        return "changed since it was indexed"
    return None


def shown(raw):
    text = raw.decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def main():
    delete = "--delete" in sys.argv[1:]
    if not delete:
        try:
            from send2trash import send2trash
        except ImportError:
            sys.exit("send2trash is missing: pip install send2trash, or run with --delete")
    failed = 0
    for raw, size, sha256 in FILES:
        path = os.fsdecode(raw)
        reason = problem(path, size, sha256)
        try:
            if reason is None:
                os.remove(path) if delete else send2trash(path)
        except OSError as exc:
            reason = exc.strerror or str(exc)
        if reason is None:
            print(("deleted " if delete else "moved to the trash ") + shown(raw))
        else:
            failed += 1
            print("left alone: " + shown(raw) + ": " + reason, file=sys.stderr)
    sys.exit(1 if failed else 0)


main()
"""

PAGE_SCRIPT = """
const TRASH_SCRIPT = __TRASH_SCRIPT__;
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
function count() { document.getElementById('count').textContent = chosen().length + ' chosen'; }
document.addEventListener('change', count);
window.addEventListener('load', count);
""".replace("__TRASH_SCRIPT__", json.dumps(TRASH_SCRIPT).replace("</", "<\\/"))


def render_report(
    groups: Sequence[Group],
    title: str = "lookalike: duplicate groups",
    thumbnails: Callable[[str], str | None] = thumbnail_data_uri,
    include_edited: bool = False,
) -> str:
    """The whole HTML page for `groups` as a string."""
    sections = []
    total_files = 0
    for number, group in enumerate(groups, start=1):
        members = build_members(group, thumbnails, include_edited)
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
        '<button onclick="exportScript()">export script (to the trash)</button>'
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
