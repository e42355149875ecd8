"""OUT/report.html: one self-contained page on what a run found (matplotlib plots as base64 PNG).

Written at the end of every run (`write_run_report`, never fails the run) and by `biomine report
OUT` (`write_report`). No scripts, no external resources: the page opens anywhere, offline.
"""
from __future__ import annotations

import base64
import html
import io
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.curation.report_data import LENGTH_BINS, SCORE_BINS, ReportData, collect
from pipeline.curation.source import open_folder
from pipeline.storage import Location

log = logging.getLogger(__name__)

REPORT_NAME = "report.html"
COLORS = {"Chemical": "#ffd54f", "Disease": "#80cbc4", "Drug": "#ffab91", "Target": "#b39ddb"}
CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;margin-top:2em}table{border-collapse:collapse}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}td.n{text-align:right}
.plots{display:flex;flex-wrap:wrap;gap:12px}.plots figure{margin:0}img.plot{width:520px}
mark{padding:0 2px;border-radius:3px}mark.rel{background:#ef9a9a}.article{border:1px solid #ddd;
padding:8px 12px;margin:10px 0;border-radius:6px}.muted{color:#777}"""


def _plot(draw: Any, title: str) -> str:
    """A matplotlib figure drawn by `draw(ax)` as an embedded PNG <figure>."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=90)
    try:
        draw(ax)
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f'<figure><img class="plot" alt="{html.escape(title)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _empty(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])


def _bars(counts: dict[str, int], horizontal: bool = False):  # noqa: ANN202 (a draw function)
    labels, values = list(counts), list(counts.values())

    def draw(ax: Any) -> None:
        if not labels:
            _empty(ax, "none")
            return
        (ax.barh if horizontal else ax.bar)(range(len(labels)), values, color="#5c6bc0")
        (ax.set_yticks if horizontal else ax.set_xticks)(range(len(labels)), labels, fontsize=8)
    return draw


def _histogram(bins: np.ndarray, counts: np.ndarray, xlabel: str, upper: float | None = None):  # noqa: ANN202
    def draw(ax: Any) -> None:
        edges = bins.astype(float).copy()
        if upper is not None:
            edges[-1] = upper
        ax.stairs(counts, edges, fill=True, color="#26a69a")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
    return draw


def _throughput(commits: list[tuple[float, int]], started: float | None):  # noqa: ANN202
    def draw(ax: Any) -> None:
        if not commits:
            _empty(ax, "no committed blocks")
            return
        t0 = min(commits[0][0], started) if started is not None else commits[0][0]
        ax.step([0.0] + [t - t0 for t, _ in commits], np.cumsum([0] + [n for _, n in commits]),
                where="post", marker="o")
        ax.set_xlim(left=0)
        ax.set_xlabel("seconds since the run started" if started is not None else
                      "seconds since the first commit")
        ax.set_ylabel("articles committed")
    return draw


def _table(rows: list[tuple[Any, ...]], header: tuple[str, ...]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{v:,}</td>' if isinstance(v, int) else f"<td>{html.escape(str(v))}</td>"
        for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _highlight(text: str, spans: list[tuple[int, int, str, str]]) -> str:
    """Text with non-overlapping spans (start, end, css class, tooltip) wrapped in <mark>."""
    out, at = [], 0
    for start, end, cls, tip in sorted(spans):
        if start < at or end > len(text):
            continue
        color = COLORS.get(cls)
        style = f' style="background:{color}"' if color else ""
        out.append(html.escape(text[at:start]))
        out.append(f'<mark class="{html.escape(cls)}"{style} title="{html.escape(tip)}">'
                   f"{html.escape(text[start:end])}</mark>")
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


def _example(article: dict[str, Any]) -> str:
    sections = {"title": article.get("title") or "", "abstract": article.get("abstract") or ""}
    spans: dict[str, list] = {"title": [], "abstract": []}
    for ent in article["entities"]:
        tip = f"{ent['type']} {ent['score']:.2f}" + (f" {ent['id']}" if ent.get("id") else "")
        spans[ent["section"]].append((ent["start"], ent["end"], ent["type"], tip))
    if not article["entities"]:
        for rel in article["relations"]:
            for side in ("head", "tail"):
                for s in rel[f"{side}_spans"] or ():
                    spans[s["section"]].append((s["start"], s["end"], "rel", rel[f"{side}_type"]))
    rels = "".join(
        f"<li><b>{html.escape(r['head_text'])}</b> —{html.escape(r['relation'])}→ "
        f"<b>{html.escape(r['tail_text'])}</b> <span class=muted>"
        f"{html.escape(' | '.join(e['text'] for e in r.get('evidence') or []))}</span></li>"
        for r in article["relations"])
    meta = " · ".join(str(x) for x in (article.get("journal"), article.get("year"), article.get("doi")) if x)
    return (f'<div class="article"><p><b>PMID {article["pmid"]}</b> <span class=muted>'
            f'{html.escape(meta)}</span></p><p><b>{_highlight(sections["title"], spans["title"])}</b></p>'
            f'<p>{_highlight(sections["abstract"], spans["abstract"])}</p>'
            f'<ul>{rels or "<li class=muted>no relations</li>"}</ul></div>')


def render(data: ReportData) -> str:
    """The report page for the collected numbers."""
    m = data.manifest
    index = (m.get("counts") or {}).get("index") or {}
    accounting = [("PubMed records read", index.get("records", "?")), ("deletions", index.get("deletions", "?")),
                  ("latest records (after updates)", index.get("latest", "?")),
                  ("articles in the output", data.articles), ("with an abstract", data.with_abstract),
                  *[(f"skipped for RE: {k}", v) for k, v in sorted(data.re_skipped.items())],
                  ("relation rows", data.n_relations), ("entity rows", data.n_entities),
                  ("record errors", sum(data.errors_by_stage.values())),
                  ("file errors", (m.get("counts") or {}).get("file_errors", 0))]
    run = [("run id", m.get("run_id", "?")), ("status", m.get("status", "?")),
           ("wall time (s)", m.get("wall_s", "?")), ("articles/s", m.get("abstracts_per_s", "?")),
           ("tasks", ", ".join((m.get("config") or {}).get("tasks", []))),
           ("failure", m.get("failure") or "—")]
    plots = [
        _plot(_throughput(data.commits, data.started), "Throughput (cumulative articles)"),
        _plot(_bars(dict(data.entities_by_type.most_common())), "Entities by type"),
        _plot(_bars(dict(data.relations_by_type.most_common()), horizontal=True), "Relations by type"),
        _plot(_histogram(LENGTH_BINS, data.abstract_lengths, "abstract length (characters)", upper=12000),
              "Abstract lengths"),
        _plot(_histogram(SCORE_BINS, data.scores, "entity score"), "Entity scores"),
        _plot(_bars({str(y): n for y, n in sorted(data.years.items())}), "Articles by publication year"),
    ]
    errors = [(kind, n, data.error_examples.get(kind, "")[:200]) for kind, n in data.errors_by_kind.most_common()]
    pairs = [(h, r, t, n) for (h, r, t), n in data.top_pairs.most_common()]
    entities = [(x, t, i or "—", n) for (t, i, x), n in data.top_entities.most_common()]
    linking = [(t, v["mentions"], v["linked"], f"{100 * (v['linked_share'] or 0):.1f} %",
                ", ".join(f"{s} {n}" for s, n in v["by_source"].items()))
               for t, v in data.linking.items()]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>biomine report: {html.escape(data.output)}</title>
<style>{CSS}</style></head><body>
<h1>biomine run report</h1><p class="muted">{html.escape(data.output)} · written {time.strftime("%Y-%m-%d %H:%M:%S")}</p>
<h2>Run</h2>{_table(run, ("", ""))}
<h2>Accounting</h2>{_table(accounting, ("", "count"))}
<h2>Plots</h2><div class="plots">{"".join(plots)}</div>
<h2>Errors by kind</h2>{_table(errors, ("kind", "count", "example")) if errors else "<p>none</p>"}
<h2>Errors by stage</h2>{_table(data.errors_by_stage.most_common(), ("stage", "count"))
                          if data.errors_by_stage else "<p>none</p>"}
<h2>Linking to MeSH</h2>{_table(linking, ("type", "mentions", "linked", "linked share", "by source"))
                           if linking else "<p>no entity rows or relation ends</p>"}
<h2>Top entities</h2>{_table(entities, ("text", "type", "MeSH id", "rows")) if entities else "<p>no entities</p>"}
<h2>Top pairs</h2>{_table(pairs, ("head", "relation", "tail", "rows")) if pairs else "<p>no relations</p>"}
<h2>Example articles</h2>{"".join(_example(a) for a in data.examples) or "<p>none</p>"}
</body></html>
"""


def write_report(output: str | Path | Location) -> str:
    """Collect, render and write OUT/report.html next to the data (atomically, local or object
    store); returns its full name (scheme kept)."""
    out = open_folder(output)
    out.write_text(REPORT_NAME, render(collect(out)))
    return out.url(REPORT_NAME)


def write_run_report(output: str | Location) -> str | None:
    """The end-of-run report; a failure is logged with its traceback, never raised (the run's data is safe)."""
    try:
        path = write_report(output)
        log.info("report: %s", path)
        return path
    except Exception:  # the report must not fail a run whose results are committed
        log.warning("report for %s not written:\n%s", output, traceback.format_exc())
        return None
