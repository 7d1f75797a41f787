"""The monitor's report of one window: ``monitor.json`` (everything), ``monitor.md`` and
``monitor.html`` (the same tables, for a person), and the one-line verdict."""

from __future__ import annotations

import html
import json
from pathlib import Path


def _p(x) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def reference_summary(reference: dict) -> dict:
    """The reference as the report states it: counts per counted class, not every sample."""
    return {"split": reference["split"], "n": reference["n"], "verdicts": reference["verdicts"],
            "measured": reference["measured"],
            "counted": {str(c): reference["counted"].count(c) for c in reference["classes"]}}


def judged(doc: dict) -> bool:
    """Whether the window held enough answers for any drift test (else the run refuses to judge)."""
    return bool(doc["comparison"]["tests"])


def verdict_line(doc: dict) -> str:
    c = doc["comparison"]
    if not judged(doc):
        return "drift: not judged (" + "; ".join(c["skipped"]) + ")"
    if c["drift"]:
        return "drift: yes (" + "; ".join(c["reasons"]) + ")"
    return "drift: no (no test below its threshold)"


def tables(doc: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table, shared by the Markdown and the HTML."""
    c, ref = doc["comparison"], doc["reference"]
    tests = [[t["distribution"], t["test"], f"{t['statistic']:.3f}", f"{t['p_value']:.3g}", f"{t['threshold']:.3g}",
              str(t["n"]), "yes" if t["drift"] else "no"] for t in c["tests"]]
    counted = [[k, str(v), _p(v / c["n"] if c["n"] else None),
                _p(ref["counted"].get(k, 0) / ref["n"] if ref["n"] else None)] for k, v in c["live"]["counted"].items()]
    vn, rn = c["live"]["verdict_n"], sum(ref["verdicts"].values())
    verdicts = [[v, str(k), _p(k / vn if vn else None), _p(ref["verdicts"].get(v, 0) / rn if rn else None)]
                for v, k in c["live"]["verdicts"].items()]
    e, t = c["estimates"], c["estimates"]["test"]
    estimates = [["accuracy of the counted class", _p(e["accuracy_estimate"]), _p(t["accuracy_estimate"]),
                  _p(t["accuracy"])],
                 [f"wrong bins among match answers (live n = {e['match_n']}, test n = {t['match_n']})",
                  _p(e["match_wrong_estimate"]), _p(t["match_wrong_estimate"]), _p(t["match_wrong_share"])]]
    return [("Drift tests", ["distribution", "test", "statistic", "p-value", "threshold", "n", "drift"], tests),
            ("Counted class", ["count", "live n", "live share", f"{ref['split']} share"], counted),
            ("Verdict mix", ["verdict", "live n", "live share", f"{ref['split']} share (correct asks)"], verdicts),
            ("Label-free estimates", ["what", "live estimate", f"{ref['split']} estimate", f"{ref['split']} measured"],
             estimates)]


def facts(doc: dict) -> list[str]:
    w = doc["window"]
    lines = [f"window: {w['since'] or 'the beginning'} .. {w['until'] or 'now'}; {w['files']} capture files, "
             f"{w['lines']} lines, {doc['comparison']['n']} answers, {w['errors']} error answers, "
             f"{len(w['bad'])} lines not read", f"model: {doc['model']}",
             f"reference: {doc['reference']['split']} split, n = {doc['reference']['n']}"]
    lines += [f"not tested: {s}" for s in doc["comparison"]["skipped"]]
    lines += [f"file not read: {where}: {why}" for where, why in w.get("unread_files", [])[:20]]
    lines += [f"line not read: {where}: {why}" for where, why in w["bad"][:20]]
    if len(w["bad"]) > 20:
        lines.append(f"... and {len(w['bad']) - 20} more (monitor.json lists them all)")
    return lines


def markdown(doc: dict) -> str:
    out = ["# Monitor", "", f"**{verdict_line(doc)}**", ""] + [f"- {f}" for f in facts(doc)] + [""]
    for title, header, rows in tables(doc):
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows] or ["(none)"]
        out.append("")
    return "\n".join(out)


def to_html(doc: dict) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>bincounter monitor</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}.yes{color:#b00;font-weight:bold}"
             "</style></head><body><h1>Monitor</h1>",
             f"<p class='{'yes' if doc['comparison']['drift'] else 'no'}'>{e(verdict_line(doc))}</p><ul>"]
    parts += [f"<li>{e(f)}</li>" for f in facts(doc)] + ["</ul>"]
    for title, header, rows in tables(doc):
        parts.append(f"<h2>{e(title)}</h2><table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
        parts.append("</table>")
    return "".join(parts) + "</body></html>\n"


def write(doc: dict, out: Path) -> dict[str, Path]:
    """monitor.json / .md / .html, each written to a temporary name and then moved: a run killed
    while writing leaves the previous report or none, never half of one (bench-faults' monitor row)."""
    out.mkdir(parents=True, exist_ok=True)
    texts = {"json": ("monitor.json", json.dumps(doc, indent=1)), "md": ("monitor.md", markdown(doc)),
             "html": ("monitor.html", to_html(doc))}
    paths = {}
    for kind, (name, text) in texts.items():
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        paths[kind] = tmp.replace(out / name)
    return paths
