"""The benchmark's printed report: markdown tables of the results ``run.main`` collects."""

from __future__ import annotations

from typing import Any


def _us(value: Any) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _x(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}×"


def operations_table(operations: dict[str, dict[str, Any]], with_sqla: bool) -> list[str]:
    head = "| operation | library µs | raw µs | library/raw | paired | target |"
    rule = "|---|--:|--:|--:|--:|:--|"
    if with_sqla:
        head += " SQLAlchemy Core µs | Core/raw | library beats Core |"
        rule += "--:|--:|:--|"
    lines = [head, rule]
    for name, r in operations.items():
        target = r.get("target")
        mark = "" if target is None else f"≤ {target:.1f} {'ok' if r['meets_target'] else 'MISS'}"
        line = (
            f"| {name} | {_us(r.get('library_us'))} | {_us(r.get('raw_us'))} | "
            f"{_x(r.get('ratio'))} | {_x(r.get('paired_ratio'))} | {mark} |"
        )
        if with_sqla:
            beats = r.get("beats_sqlalchemy")
            verdict = "—" if beats is None else ("yes" if beats else "NO")
            line += (
                f" {_us(r.get('sqlalchemy_us'))} | {_x(r.get('sqlalchemy_ratio'))} | {verdict} |"
            )
        lines.append(line)
    return lines


def pages_table(p: dict[str, Any]) -> list[str]:
    page = p["page"]
    first, deep = p["page_1"], p[f"page_{page}"]
    lines = [
        f"Keyset pages: 50 items a page, a user with {p['user_todos']:,} personal todos; "
        f"page {page:,} starts {p['rows_deep']:,} rows deep.",
        "",
        "| page | library µs | raw µs | SQLAlchemy Core µs | raw with OFFSET µs |",
        "|---|--:|--:|--:|--:|",
        f"| 1 | {_us(first.get('library_us'))} | {_us(first.get('raw_us'))} | "
        f"{_us(first.get('sqlalchemy_us'))} | {_us(first.get('raw_us'))} |",
        f"| {page:,} | {_us(deep.get('library_us'))} | {_us(deep.get('raw_us'))} | "
        f"{_us(deep.get('sqlalchemy_us'))} | {_us(deep.get('offset_us'))} |",
        f"| page {page:,} / page 1 | {_x(p.get('library_ratio'))} | {_x(p.get('raw_ratio'))} | "
        f"{_x(p.get('sqlalchemy_ratio'))} | {_x(p.get('offset_ratio'))} |",
    ]
    return lines


def claim_table(c: dict[str, Any]) -> list[str]:
    checks = c["checks"]
    verdict = "ok" if c["ok"] else "FAILED " + ", ".join(f"{k}={v}" for k, v in checks.items() if v)
    per = c["per_worker"]
    return [
        f"DeliveryQueries.claim(limit={c['batch']}) → "
        f"{c.get('marks', 'mark_sent')}(… attempts), "
        f"{c['workers']} worker processes until the queue is empty.",
        "",
        "| workers | deliveries | seconds | deliveries/s | claims | per worker (min–max) | "
        "claimed twice / missed / not sent |",
        "|--:|--:|--:|--:|--:|:--|:--|",
        f"| {c['workers']} | {c['deliveries']:,} | {c['seconds']:.2f} | "
        f"{c['deliveries_per_second']:,.0f} | {c['claims']:,} | {per[0]:,}–{per[-1]:,} | "
        f"{checks['claimed_twice']} / {checks['never_claimed']} / {checks['not_sent']} "
        f"({verdict}) |",
    ]


def render(results: dict[str, Any]) -> str:
    """The whole report as markdown."""
    with_sqla = results.get("sqlalchemy") is not None
    m = results["machine"]
    lines = [
        "",
        f"{results['todos']:,} seeded todos; medians of {results['repetitions']} interleaved "
        f"repetitions; {m['cpus']} CPUs, Python {m['python']}"
        + (f", PostgreSQL {m['postgres']}" if m.get("postgres") else "")
        + (
            f", SQLAlchemy {results['sqlalchemy']}"
            if with_sqla
            else " (SQLAlchemy not installed: no Core column)"
        )
        + f"; {results['date']}; {results['seconds']:.0f} s.",
        "",
        *operations_table(results["operations"], with_sqla),
        "",
        "library/raw: ratio of the medians (the target's measure); paired: median of each "
        "round's own library/raw ratio (steadier when the machine's load drifts).",
        "",
        *pages_table(results["pages"]),
        "",
        *claim_table(results["claim"]),
    ]
    return "\n".join(lines)
