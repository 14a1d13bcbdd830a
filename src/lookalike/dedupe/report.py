"""A self-contained HTML page to review duplicate groups and choose what to remove.

One file, no network: pictures are inlined as data URIs (one preview per member, shown as a
thumbnail and enlarged in the viewer), styles and script are inline (`report_assets`). Groups
show their tier at a glance (identical files, identical pixels, near-duplicates); each member
shows its relation to the kept copy when the group carries relations, and which hash matched it
at what distance (`report_facts`). Large groups show their first members and the rest behind a
button that counts them. A viewer enlarges any member and shows it beside the kept copy, as a
flicker between the two and as their difference, aligned; the keyboard moves between groups and
members and toggles the choice. A checkbox per file feeds two exports, a Python script and a
JSON list of the chosen files; only copies whose relation says nothing is lost (identical,
re-encoded, resized, or any copy of a group never verified) are chosen at first.

Only files the command line indexed from disk (origin FROM_FILE) get a preview and a checkbox: an
id sent over HTTP, or a `path` in metadata, is shown as text and never names a file. The script
carries each chosen file's exact name as hex bytes (no quoting to get wrong, whatever a name
holds: quotes, a carriage return, bytes that are not UTF-8) with the size and sha256 it was
indexed with; it moves a file to the platform's trash (send2trash) only if it is unchanged, and
deletes it for good only when run with --delete.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from lookalike.dedupe.grouping import Group
from lookalike.dedupe.report_assets import PAGE_SCRIPT, PAGE_STYLE
from lookalike.dedupe.report_facts import (
    MatchFacts,
    RelationFacts,
    match_of,
    relation_of,
    tier_label,
    tier_of,
)
from lookalike.discover import key_path, path_text
from lookalike.index.base import FROM_FILE, Entry
from lookalike.matcher import DEFAULT_PRESET, Matcher

PREVIEW_SIDE = 800  # long side of each member's preview: a sharp thumbnail, and enlarged in the viewer
THUMBNAIL_SIDE = PREVIEW_SIDE  # the name older callers pass a side as
# The page holds every preview, so a report of many images gets smaller ones (an 800-pixel JPEG
# is ~60 KB, a 320-pixel one ~10 KB): (members up to, side).
PREVIEW_SIDES = ((500, PREVIEW_SIDE), (2000, 480))
SMALLEST_PREVIEW_SIDE = 320


def preview_side(members: int) -> int:
    """The previews' long side for a page of `members` images, so the file stays openable."""
    return next((side for limit, side in PREVIEW_SIDES if members <= limit), SMALLEST_PREVIEW_SIDE)


SHOWN_MEMBERS = 8  # a larger group shows its first members, and a button for the rest


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
    relation: RelationFacts | None = None
    match: MatchFacts | None = None
    selected: bool | None = None  # True: pre-selected whatever its relation (--include-edited)

    @property
    def chosen_at_first(self) -> bool:
        """Pre-selected for removal, as Group.selected chooses: a copy (never the kept one) whose
        relation, if known, is safe, or any copy with include_edited."""
        if self.selected is not None:
            return self.selected and not self.best
        return not self.best and (self.relation is None or self.relation.safe)


def thumbnail_data_uri(path: str, side: int = PREVIEW_SIDE) -> str | None:
    """A JPEG of the image, at most `side` pixels on its long side, as a data URI; None if it
    cannot be read."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (side * 2, side * 2))
            image = ImageOps.exif_transpose(image) or image
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, "JPEG", quality=80)
    except Exception:
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _path_of(entry: Entry) -> str | None:
    """The file an entry names: only `index add` makes such entries (metadata is never trusted)."""
    return key_path(entry.key) if entry.origin == FROM_FILE else None


def build_members(
    group: Group,
    thumbnails: Callable[[str], str | None] = thumbnail_data_uri,
    rule: Matcher | None = None,
    include_edited: bool = False,
) -> list[ReportMember]:
    """The group's members as the page shows them: the kept copy first, each other with its
    relation, the clause that matched it and whether it is pre-selected (only copies that lose
    nothing, unless `include_edited`)."""
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
                thumbnail=thumbnails(path) if path is not None else None,
                sha256=entry.sha256,
                relation=None if index == 0 else relation_of(group, entry),
                match=None if index == 0 else match_of(group, entry, rule),
                selected=True if include_edited and index != 0 else None,
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


def _path_html(shown: str) -> str:
    """The name on a line of its own, the folder below it, breakable after each slash (a long
    path wraps at its folders, not mid-word)."""
    folder, name = os.path.split(shown)
    parts = [html.escape(part) for part in folder.split("/")] if folder else []
    folder_html = "/<wbr>".join(parts) + ("/" if parts else "")
    return (
        f"<div class=name>{html.escape(name or shown)}</div>"
        f'<div class=dir title="{html.escape(shown)}">{folder_html}</div>'
    )


def _facts_text(member: ReportMember) -> str:
    resolution = f"{member.width}×{member.height}" if member.width and member.height else "?"
    return f"{resolution} · {_size_text(member.byte_size)}"


def _member_html(member: ReportMember, position: int) -> str:
    esc = html.escape
    shown = path_text(member.path) if member.path is not None else member.key
    name = os.path.basename(shown) or shown
    image = (
        f'<button class=thumb data-open=enlarge title="enlarge (Enter)">'
        f'<img src="{member.thumbnail}" alt="{esc(name)}" loading="lazy"></button>'
        if member.thumbnail
        else '<div class="missing">no preview</div>'
    )
    lines = []
    if member.best:
        lines.append('<span class="badge keep">kept copy</span>')
    if member.relation is not None:
        safe = "" if member.relation.safe else " unsafe"
        lines.append(f'<span class="badge rel{safe}">{esc(member.relation.text)}</span>')
    if member.match is not None:
        lines.append(
            f'<div class=match title="{esc(member.match.detail)}">matched: {esc(member.match.text)}</div>'
        )
    lines.append(_path_html(shown))
    lines.append(f"<div class=facts>{_facts_text(member)}</div>")
    tools = [_pick_html(member)]
    if not member.best and member.thumbnail:
        tools += [
            '<button data-open=side title="beside the kept copy (s)">side by side</button>',
            '<button data-open=flicker title="flicker with the kept copy (f)">flicker</button>',
            '<button data-open=diff title="difference from the kept copy (d)">difference</button>',
        ]
    lines.append(f"<div class=tools>{''.join(tools)}</div>")
    if member.relation is not None and not member.relation.safe and not member.best:
        lines.append("<div class=note>not chosen at first: it differs from the kept copy on purpose</div>")
    classes = "member" + (" best" if member.best else "") + (" extra" if position >= SHOWN_MEMBERS else "")
    data = {
        "name": name,
        "facts": _facts_text(member),
        "relation": member.relation.text if member.relation else ("kept copy" if member.best else ""),
        "match": f"matched: {member.match.text}" if member.match else "",
        "uri": Path(member.path).as_uri() if member.path is not None and os.path.isabs(member.path) else "",
        "region": ",".join(f"{v:.4f}" for v in member.relation.region)
        if member.relation is not None and member.relation.region
        else "",
        "shown": ",".join(f"{v:.4f}" for v in member.relation.shown_at)
        if member.relation is not None and member.relation.shown_at
        else "",
    }
    attributes = "".join(f' data-{key}="{esc(value)}"' for key, value in data.items() if value)
    return f'<figure class="{classes}"{attributes}>{image}<figcaption>{"".join(lines)}</figcaption></figure>'


def _pick_html(member: ReportMember) -> str:
    """The checkbox that puts a file in the exports: only for files indexed from disk, with the
    exact name as hex and the size and sha256 the script checks before touching it."""
    if member.path is None or member.sha256 is None or member.byte_size is None:
        return '<span class="id">an id, not a file: nothing to remove</span>'
    checked = " checked" if member.chosen_at_first else ""
    safe = "1" if not member.best and (member.relation is None or member.relation.safe) else "0"
    return (
        "<label class=choice><input type=checkbox class=pick"
        f' data-path="{html.escape(path_text(member.path))}"'
        f' data-hex="{os.fsencode(member.path).hex()}" data-size="{int(member.byte_size)}"'
        f' data-sha256="{html.escape(member.sha256)}" data-safe="{safe}"{checked}> to the trash</label>'
    )


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

PAGE_SCRIPT_WITH_TRASH = PAGE_SCRIPT.replace(
    "__TRASH_SCRIPT__", json.dumps(TRASH_SCRIPT).replace("</", "<\\/")
)


def render_report(
    groups: Sequence[Group],
    title: str = "lookalike: duplicate groups",
    thumbnails: Callable[[str], str | None] | None = None,
    rule: Matcher | str | None = None,
    include_edited: bool = False,
) -> str:
    """The whole HTML page for `groups` as a string. `rule` is the matcher that grouped them (a
    rule such as "phash <= 6", or a preset; default the default preset): the page names the
    clause of it that matched each copy. `thumbnails` makes a member's preview (a data URI) from
    its path; by default a JPEG of `preview_side` pixels."""
    matcher = Matcher.parse(rule or DEFAULT_PRESET) if not isinstance(rule, Matcher) else rule
    if thumbnails is None:
        side = preview_side(sum(len(group.members) for group in groups))
        thumbnails = functools.partial(thumbnail_data_uri, side=side)
    sections = []
    total_files = 0
    tiers: Counter[str] = Counter()
    first_of_tier: dict[str, int] = {}
    for number, group in enumerate(groups, start=1):
        members = build_members(group, thumbnails, matcher, include_edited)
        total_files += len(members)
        tier = tier_of(group)
        tiers[tier] += 1
        first_of_tier.setdefault(tier, number)
        sections.append(_group_html(number, tier, members, [_display_name(entry) for entry in group.similar]))
    chips = "".join(
        f'<a class="chip {tier_label(tier)[1]}" href="#group-{first_of_tier[tier]}" '
        f'title="go to the first group of this tier">{html.escape(tier_label(tier)[0])}<b>{count}</b></a>'
        for tier, count in sorted(tiers.items(), key=lambda item: first_of_tier[item[0]])
    )
    summary = f"{len(groups)} group{'s' if len(groups) != 1 else ''}, {total_files} images"
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>"
        f"<header><h1>{html.escape(title)}</h1><span>{summary}</span><nav class=chips>{chips}</nav>"
        "<span id=count></span>"
        '<button onclick="chooseSafe()" title="copies that lose nothing: identical, re-encoded, resized">'
        "choose safe copies</button>"
        '<button onclick="setAll(true)">choose all copies</button>'
        '<button onclick="setAll(false)">clear</button>'
        '<button onclick="exportScript()">export script (to the trash)</button>'
        '<button onclick="exportJson()">export JSON</button>'
        "<span class=hint><kbd>j</kbd>/<kbd>k</kbd> group · <kbd>←</kbd>/<kbd>→</kbd> image · "
        "<kbd>x</kbd> choose · <kbd>Enter</kbd> enlarge · <kbd>?</kbd> keys</span></header>"
        f"{HELP_HTML}<main>"
        + ("".join(sections) or "<p style='margin:16px'>No duplicate groups found.</p>")
        + f"</main>{VIEWER_HTML}<script>{PAGE_SCRIPT_WITH_TRASH}</script></body></html>"
    )


HELP_HTML = (
    "<div id=help hidden><b>Keys</b>: <kbd>j</kbd> or <kbd>n</kbd> next group, <kbd>k</kbd> or "
    "<kbd>p</kbd> previous group, <kbd>←</kbd> <kbd>→</kbd> (or <kbd>h</kbd> <kbd>l</kbd>) previous or "
    "next image, <kbd>x</kbd> or <kbd>Space</kbd> choose or unchoose the image for the trash, "
    "<kbd>Enter</kbd> or <kbd>e</kbd> enlarge, <kbd>s</kbd> side by side with the kept copy, "
    "<kbd>f</kbd> flicker between the two, <kbd>d</kbd> their difference, <kbd>Esc</kbd> close the "
    "viewer, <kbd>?</kbd> this help.</div>"
)
VIEWER_HTML = (
    '<div id=viewer hidden role=dialog aria-label="compare with the kept copy"><div class=bar>'
    "<button class=mode data-mode=enlarge onclick=\"openViewer('enlarge')\">enlarge <kbd>e</kbd></button>"
    "<button class=mode data-mode=side onclick=\"openViewer('side')\">side by side <kbd>s</kbd></button>"
    "<button class=mode data-mode=flicker onclick=\"openViewer('flicker')\">flicker <kbd>f</kbd></button>"
    "<button class=mode data-mode=diff onclick=\"openViewer('diff')\">difference <kbd>d</kbd></button>"
    "<span id=view-title class=title></span>"
    '<button onclick="step(-1)">← previous</button><button onclick="step(1)">next →</button>'
    '<button onclick="toggle()">choose <kbd>x</kbd></button>'
    '<a id=view-original target=_blank rel=noopener style="color:#9cf">open the file</a>'
    '<button onclick="closeViewer()">close <kbd>Esc</kbd></button></div><div id=stage></div></div>'
)


def _counted(kinds: Counter[str]) -> str:
    """ "resized ×3, edited": how many copies of each kind, most first."""
    return ", ".join(
        html.escape(kind) + (f" ×{count}" if count > 1 else "") for kind, count in kinds.most_common()
    )


def _display_name(entry: Entry) -> str:
    path = _path_of(entry)
    return os.path.basename(path_text(path) if path is not None else entry.key)


def _group_html(number: int, tier: str, members: list[ReportMember], similar: Sequence[str] = ()) -> str:
    """A group: its tier, its size and what its copies are, the kept copy first, the members past
    `SHOWN_MEMBERS` behind a button that counts them, and the similar pictures left out of it."""
    label, css = tier_label(tier)
    kinds = Counter(m.relation.text if m.relation else "copy" for m in members[1:])
    counted = _counted(kinds)
    kept = members[0]
    kept_name = os.path.basename(path_text(kept.path) if kept.path is not None else kept.key)
    body = "".join(_member_html(member, position) for position, member in enumerate(members))
    hidden = members[SHOWN_MEMBERS:]
    if hidden:
        hidden_kinds = Counter(m.relation.text if m.relation else "copy" for m in hidden)
        what = _counted(hidden_kinds)
        body += (
            f'<button class=expand onclick="expand(this)"><span class=verb>show</span> {len(hidden)} more '
            f"({what}; <span class=chosen>{sum(m.chosen_at_first for m in hidden)}</span> chosen)</button>"
        )
    return (
        f'<section class="group {css}" id="group-{number}"><h2><span class="tier">{html.escape(label)}</span>'
        f"Group {number} · {len(members)} images</h2>"
        f"<p class=summary>keeps <b>{html.escape(kept_name)}</b>; copies: {counted}</p>"
        f'<div class="members">{body}</div>'
        + (
            f"<p class=similar>similar, not copies (the files show no picture in common; left out): "
            f"{html.escape(', '.join(similar))}</p>"
            if similar
            else ""
        )
        + "</section>"
    )


def write_report(groups: Sequence[Group], target: str | os.PathLike[str], **options: object) -> str:
    """Write the page; returns its absolute path."""
    page = render_report(groups, **options)  # type: ignore[arg-type]
    with open(target, "w", encoding="utf-8") as handle:
        handle.write(page)
    return os.path.abspath(target)
