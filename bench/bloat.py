"""What PostgreSQL's catalog says about the tables a load writes, and what a claim-shaped
read costs: the soak test's per-minute sample (bench/soak.py).

Nothing here names a table or an index: the tables are those the load has written
(``pg_stat_user_tables`` counters moved since the load began), their indexes come from
``pg_index``, so a schema change (a new hot table, an index added or dropped) is
followed without editing this file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

TABLES = """
SELECT s.relid, s.relname, pg_relation_size(s.relid), pg_indexes_size(s.relid),
       pg_total_relation_size(s.relid), s.n_live_tup, s.n_dead_tup, s.n_tup_ins, s.n_tup_upd,
       s.n_tup_hot_upd, s.n_tup_del, s.autovacuum_count, s.autoanalyze_count
FROM pg_stat_user_tables s
ORDER BY s.relname
"""
INDEXES = """
SELECT c.relname, pg_relation_size(i.indexrelid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = %s ORDER BY c.relname
"""


@dataclass
class TableSample:
    """One table at one moment; sizes in bytes, counters cumulative since the cluster started."""

    name: str
    heap: int
    indexes: int
    total: int
    live: int
    dead: int
    inserted: int
    updated: int
    hot_updated: int
    deleted: int
    autovacuums: int
    autoanalyzes: int
    index_sizes: dict[str, int] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return self.inserted + self.updated + self.deleted

    @property
    def churn(self) -> int:
        """Row versions the load has made dead here: what bloats a table."""
        return self.updated + self.deleted

    @property
    def hot_share(self) -> float | None:
        return self.hot_updated / self.updated if self.updated else None


def writes(conn: Any) -> dict[str, int]:
    """Rows written so far per table: taken before the load, so that ``tables`` can leave
    out what only migrations wrote."""
    return {sample.name: sample.writes for sample in tables(conn, {})}


def tables(conn: Any, before: dict[str, int]) -> list[TableSample]:
    """Every table written since ``before`` was taken, with each of its indexes."""
    found = []
    for relid, name, *numbers in conn.execute(TABLES).fetchall():
        sample = TableSample(name, *numbers)
        if sample.writes > before.get(name, 0):
            sample.index_sizes = dict(conn.execute(INDEXES, [relid]).fetchall())
            found.append(sample)
    return found


def hot_table(samples: list[TableSample]) -> str | None:
    """The table with the most dead row versions made (updates + deletes): the claim's table."""
    return max(samples, key=lambda sample: sample.churn).name if samples else None


@dataclass
class ProbeCost:
    """An EXPLAIN (ANALYZE, BUFFERS) of a claim-shaped read, reduced to what grows with bloat."""

    buffers: int  # shared blocks hit + read by the whole plan
    ms: float  # execution time
    rows: int  # rows it locked (at most the LIMIT)
    index: str | None  # the index its scan used, if any


def probe_cost(plan_json: str | list) -> ProbeCost:
    """Reduce PostgreSQL's FORMAT JSON plan to a ``ProbeCost``."""
    document = json.loads(plan_json) if isinstance(plan_json, str) else plan_json
    top = document[0]
    plan = top["Plan"]
    return ProbeCost(
        buffers=plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0),
        ms=top["Execution Time"],
        rows=plan.get("Actual Rows", 0),
        index=_index_name(plan),
    )


def _index_name(plan: dict) -> str | None:
    if "Index Name" in plan:
        return plan["Index Name"]
    for child in plan.get("Plans", []):
        if found := _index_name(child):
            return found
    return None


def as_dict(sample: TableSample | ProbeCost) -> dict[str, Any]:
    return asdict(sample)
