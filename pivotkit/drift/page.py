"""The drift report as one self-contained HTML page (``--html``): no script, no font, no CDN.

A summary, a chart of the findings per run over time (inline SVG, from the history), and the
findings by operation, each with what came back and what the contract says side by side.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from html import escape
from typing import Any

from pivotkit.drift.findings import SEVERITIES, Finding
from pivotkit.drift.report import DriftReport, RunPoint

_COLOURS = {"breaking": "#c62828", "warning": "#ef8f00", "info": "#1e6fd0"}
_CHART_RUNS = 30
_STYLE = """
:root { color-scheme: light; --ink: #1d2330; --soft: #5b6474; --line: #d9dee7; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, sans-serif; color: var(--ink); background: #f5f7fa; }
header, main { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
header { padding-top: 28px; }
h1 { margin: 0 0 4px; font-size: 24px; }
h2 { font-size: 18px; margin: 28px 0 10px; }
.meta { color: var(--soft); margin: 0; }
.verdict { font-size: 16px; margin: 14px 0 0; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 16px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
        min-width: 110px; }
.card b { display: block; font-size: 22px; }
.card.breaking b { color: #c62828; } .card.warning b { color: #ef8f00; }
.card.info b { color: #1e6fd0; }
.chart { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
.chart svg { width: 100%; height: auto; display: block; }
.legend span { margin-right: 14px; color: var(--soft); }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 5px; }
details.operation { background: #fff; border: 1px solid var(--line); border-radius: 8px;
                    margin-bottom: 12px; }
details.operation > summary { cursor: pointer; padding: 10px 14px; font-weight: 600; }
.finding { border-top: 1px solid var(--line); padding: 12px 14px; }
.finding h3 { font-size: 15px; margin: 0 0 8px; }
.badge { display: inline-block; border-radius: 4px; padding: 1px 7px; font-size: 12px;
         font-weight: 600; color: #fff; margin-right: 6px; }
.badge.breaking { background: #c62828; } .badge.warning { background: #ef8f00; }
.badge.info { background: #1e6fd0; }
.badge.life { background: #e8ebf1; color: var(--ink); }
.badge.new { background: #6a1b9a; color: #fff; }
code { font: 13px ui-monospace, monospace; background: #eef1f5; padding: 1px 4px;
       border-radius: 3px; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: 12px; }
.side { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; min-width: 0; }
.side h4 { margin: 0 0 4px; font-size: 13px; text-transform: uppercase; color: var(--soft); }
.side p { margin: 0 0 6px; }
pre { margin: 0; font: 12.5px/1.4 ui-monospace, monospace; white-space: pre-wrap;
      word-break: break-word; background: #f7f8fb; padding: 6px 8px; border-radius: 4px; }
ul.plain { background: #fff; border: 1px solid var(--line); border-radius: 8px;
           padding: 10px 30px; }
.none { color: var(--soft); }
footer { color: var(--soft); font-size: 12px; padding: 24px; text-align: center; }
"""


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def _chart(points: list[RunPoint]) -> str:
    """Stacked bars of findings per run (breaking, warning, info), newest on the right."""
    points = points[-_CHART_RUNS:]
    width, height, left, bottom, top = 720, 220, 40, 30, 12
    plot_h = height - bottom - top
    peak = max([sum(p.counts.get(s, 0) for s in SEVERITIES) for p in points] + [1])
    step = (width - left - 10) / max(len(points), 1)
    bar = max(4.0, min(36.0, step * 0.7))
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" aria-label="Findings per run">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 5}" y2="{top + plot_h}" '
        'stroke="#9aa3b2"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" font-size="11" '
        f'fill="#5b6474">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end" font-size="11" '
        'fill="#5b6474">0</text>',
    ]
    for i, point in enumerate(points):
        x = left + i * step + (step - bar) / 2
        y = float(top + plot_h)
        for severity in SEVERITIES:
            n = point.counts.get(severity, 0)
            if not n:
                continue
            h = plot_h * n / peak
            y -= h
            parts.append(
                f'<rect class="bar {severity}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{_COLOURS[severity]}"><title>run {point.run} '
                f"({escape(point.started)}): {n} {severity}</title></rect>"
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" '
            f'font-size="11" fill="#5b6474">#{point.run}</text>'
        )
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{_COLOURS[s]}"></i>{s}</span>' for s in SEVERITIES
    )
    return "".join(parts) + f'<div class="legend">{legend}</div>'


def _finding(f: Finding) -> str:
    life = ""
    if f.status:
        css = "new" if f.status == "new" else "life"
        life = f'<span class="badge {css}">{escape(f.life())}</span>'
    example = f"<pre>{escape(_json(f.example))}</pre>" if f.example is not None else ""
    contract = f"<pre>{escape(_json(f.contract))}</pre>" if f.contract is not None else ""
    return (
        f'<article class="finding {f.severity}" data-kind="{escape(f.kind)}">'
        f'<h3><span class="badge {f.severity}">{f.severity}</span>{life}'
        f"{escape(f.kind)} at <code>{escape(f.pointer or '/')}</code> "
        f'<span class="meta">({f.count}/{f.answers} answers)</span></h3>'
        '<div class="sides">'
        f'<div class="side observed"><h4>Observed</h4><p>{escape(f.observed)}</p>{example}</div>'
        f'<div class="side contract"><h4>Contract</h4><p>{escape(f.expected)}</p>{contract}'
        "</div></div></article>"
    )


def _by_operation(findings: Iterable[Finding]) -> str:
    groups: dict[str, list[Finding]] = {}
    for f in findings:
        groups.setdefault(f.operation, []).append(f)
    if not groups:
        return '<p class="none">No finding: the answers fit the contract and the baselines.</p>'
    out = []
    for op, items in sorted(groups.items()):
        counts = ", ".join(
            f"{n} {s}" for s in SEVERITIES if (n := sum(1 for f in items if f.severity == s))
        )
        out.append(
            f'<details class="operation" open data-operation="{escape(op)}">'
            f"<summary>{escape(op)} ({counts})</summary>"
            + "".join(_finding(f) for f in items)
            + "</details>"
        )
    return "".join(out)


def _list(findings: Iterable[Finding], extra: str = "") -> str:
    items = [
        f"<li>{escape(f.operation)} <code>{escape(f.pointer or '/')}</code> "
        f"{escape(f.kind)}{escape(extra)}</li>"
        for f in findings
    ]
    return f'<ul class="plain">{"".join(items)}</ul>' if items else ""


def render(report: DriftReport) -> str:
    """The report's HTML page (one string, everything inline)."""
    s = report.summary()
    cards = [("breaking", s["breaking"]), ("warning", s["warning"]), ("info", s["info"])]
    if report.run is not None:
        cards += [("new", s["new"]), ("ongoing", s["ongoing"]), ("resolved", s["resolved"])]
    cards += [("suppressed", s["suppressed"]), ("answers", s["answers"])]
    card_html = "".join(
        f'<div class="card {name}" data-count="{name}"><b>{n}</b>{name}</div>' for name, n in cards
    )
    run = f" · run {report.run}" if report.run is not None else ""
    points = report.series or [RunPoint(report.run or 1, report.started, s)]
    sections = [
        '<section id="chart"><h2>Findings per run</h2>'
        f'<div class="chart">{_chart(points)}</div></section>',
        f'<section id="findings"><h2>Findings by operation</h2>{_by_operation(report.findings)}'
        "</section>",
    ]
    if report.resolved:
        sections.append(
            '<section id="resolved"><h2>Resolved since the last run</h2>'
            + _list(report.resolved)
            + "</section>"
        )
    if report.suppressed:
        sections.append(
            '<section id="suppressed"><h2>Suppressed (known deviations)</h2>'
            + _list(report.suppressed, " (suppressed)")
            + "</section>"
        )
    if report.errors:
        errors = "".join(f"<li>{escape(e)}</li>" for e in report.errors)
        sections.append(
            f'<section id="errors"><h2>Errors</h2><ul class="plain">{errors}</ul></section>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>pivotkit drift: {escape(report.target)}</title><style>{_STYLE}</style></head>"
        f"<body><header><h1>pivotkit drift</h1>"
        f'<p class="meta">{escape(report.target)}{run} · {escape(report.started)}</p>'
        f'<p class="verdict">{escape(report.text_summary())}</p>'
        f'<div class="cards">{card_html}</div></header>'
        f"<main>{''.join(sections)}</main>"
        f"<footer>pivotkit drift · alert on {escape(report.alert_on)}</footer></body></html>\n"
    )
