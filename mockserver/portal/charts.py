"""Usage charts as inline SVG, rendered on the server (no script, no CDN)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

SLOT_COLOURS = {"primary": "#1f5fa8", "secondary": "#b35900"}
_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 16, 36, 44


@dataclass(frozen=True)
class Usage:
    """One usage row as the reports read it."""

    day: str
    operation_id: str
    slot: str
    count: int


def per_day(
    rows: Iterable[Usage], *, days: int = 14, today: dt.date | None = None
) -> list[tuple[str, dict[str, int]]]:
    """Calls per day and slot over the ``days`` days ending today (or at the latest day used)."""
    rows = list(rows)
    end = today or dt.datetime.now(dt.UTC).date()
    for row in rows:
        end = max(end, dt.date.fromisoformat(row.day))
    out: dict[str, dict[str, int]] = {}
    for offset in range(days - 1, -1, -1):
        out[(end - dt.timedelta(days=offset)).isoformat()] = dict.fromkeys(SLOT_COLOURS, 0)
    for row in rows:
        if row.day in out:
            slots = out[row.day]
            slots[row.slot] = slots.get(row.slot, 0) + row.count
    return list(out.items())


def per_operation(rows: Iterable[Usage]) -> list[tuple[str, dict[str, int]]]:
    """Calls per operation and slot, busiest first."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        slots = out.setdefault(row.operation_id, dict.fromkeys(SLOT_COLOURS, 0))
        slots[row.slot] = slots.get(row.slot, 0) + row.count
    return sorted(out.items(), key=lambda item: (-sum(item[1].values()), item[0]))


def _nice_max(value: int) -> int:
    """The smallest 2, 4 or 10 times a power of ten at least ``value``: even, so the middle
    tick of the axis is a whole number too."""
    step = 1
    while True:
        for factor in (2, 4, 10):
            if factor * step >= value:
                return factor * step
        step *= 10


def day_chart(
    series: Sequence[tuple[str, dict[str, int]]],
    *,
    title: str,
    desc: str,
    labels: dict[str, str],
    chart_id: str = "chart-days",
) -> Markup:
    """A stacked bar chart of calls per day, one colour per key slot, with a legend."""
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    top = _nice_max(max((sum(v.values()) for _, v in series), default=0))
    slot_w = plot_w / max(1, len(series))
    bar_w = max(4.0, slot_w * 0.6)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" '
        f'viewBox="0 0 {_WIDTH} {_HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for i in range(3):
        value = top * i // 2
        y = _TOP + plot_h - plot_h * i / 2
        parts.append(
            f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_WIDTH - _RIGHT}" y2="{y:.1f}" class="grid"/>'
        )
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{value}</text>'
        )
    for index, (day, slots) in enumerate(series):
        x = _LEFT + index * slot_w + (slot_w - bar_w) / 2
        y = _TOP + plot_h
        total = sum(slots.values())
        for slot, colour in SLOT_COLOURS.items():
            count = slots.get(slot, 0)
            if not count:
                continue
            h = plot_h * count / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{colour}" data-day="{escape(day)}" data-slot="{escape(slot)}" '
                f'data-count="{count}"><title>{escape(day)} {escape(labels.get(slot, slot))}: '
                f"{count}</title></rect>"
            )
        if total:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                f'class="value">{total}</text>'
            )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{_HEIGHT - _BOTTOM + 16}" '
            f'text-anchor="middle" class="tick">{escape(day[5:])}</text>'
        )
    return _close(parts, _LEFT, labels)


def _close(parts: list[str], legend_x: float, labels: Mapping[str, str]) -> Markup:
    """Append the key-slot legend and close the SVG."""
    for slot, colour in SLOT_COLOURS.items():
        parts.append(f'<rect x="{legend_x}" y="10" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{legend_x + 18}" y="20" class="legend">'
            f"{escape(labels.get(slot, slot))}</text>"
        )
        legend_x += 150
    parts.append("</svg>")
    return Markup("".join(parts))


def operation_chart(
    series: Sequence[tuple[str, dict[str, int]]],
    *,
    title: str,
    desc: str,
    labels: dict[str, str],
    chart_id: str = "chart-operations",
) -> Markup:
    """A horizontal stacked bar chart of calls per operation, one colour per key slot."""
    row_h, label_w, right = 26, 190, 48
    height = _TOP + row_h * max(1, len(series)) + 8
    plot_w = _WIDTH - label_w - right
    top = max((sum(v.values()) for _, v in series), default=0) or 1
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{chart_id}" '
        f'viewBox="0 0 {_WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]
    for index, (operation_id, slots) in enumerate(series):
        y = _TOP + index * row_h
        x = float(label_w)
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end" class="tick">'
            f"{escape(operation_id)}</text>"
        )
        for slot, colour in SLOT_COLOURS.items():
            count = slots.get(slot, 0)
            if not count:
                continue
            w = plot_w * count / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="{row_h - 8}" '
                f'fill="{colour}" data-operation="{escape(operation_id)}" '
                f'data-slot="{escape(slot)}" data-count="{count}"><title>{escape(operation_id)} '
                f"{escape(labels.get(slot, slot))}: {count}</title></rect>"
            )
            x += w
        parts.append(
            f'<text x="{x + 6:.1f}" y="{y + 16}" class="value">{sum(slots.values())}</text>'
        )
    return _close(parts, label_w, labels)
