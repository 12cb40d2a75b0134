"""What ``pg.Client`` asks PostgreSQL about types: the introspection of the
types a database defines (enums, domains, arrays, ranges, multiranges,
composites, an extension's types), a type's OID by name
(``set_type_codec``), and the quoting of ``copy_from_query``'s arguments."""

from __future__ import annotations

from typing import Any

# The database's own types (enums, domains, arrays, ranges, composites ...)
# a statement uses, looked up once per service.
INTROSPECT = """
SELECT t.oid, t.typtype, t.typname::text, n.nspname::text, t.typelem, t.typbasetype,
       t.typcategory,
       (SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid),
       (SELECT r.rngtypid FROM pg_catalog.pg_range r
         WHERE to_jsonb(r) ->> 'rngmultitypid' = t.oid::text),
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum),
       ARRAY(SELECT a.atttypid FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
              ORDER BY a.attnum)
  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.oid = ANY($1::oid[])
"""
TYPE_OID = """
SELECT t.oid FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typname = $1 AND n.nspname = $2
"""
# copy_from_query's arguments, quoted by the server for the query's
# parameter types (COPY takes no parameters), as asyncpg does.
TYPE_NAMES = """
SELECT array_agg(format_type(t, NULL) ORDER BY o) FROM unnest($1::oid[]) WITH ORDINALITY u(t, o)
"""


def quote_sql(type_names: list[str]) -> str:
    cols = ", ".join(f"quote_nullable(${i}::{n}::text)" for i, n in enumerate(type_names, 1))
    return f"SELECT {cols or 'NULL'}"


# Rounds of introspection for one statement (a type's parts may be types
# of the database too: an array of a domain over an enum ...).
LEARN_ROUNDS = 8


def kinds(rows: list[Any], wanted: list[int]) -> list[tuple[Any, ...]]:
    """Introspection rows as ``PgService.learn_types`` takes them; a type
    that was not found (dropped meanwhile) is learned as plain text."""
    out = []
    for (oid, typtype, name, schema, elem, base, category, rng_sub, mr_range,
         fnames, ftypes) in rows:
        if typtype == "e":
            kind, ref = "e", 0
        elif typtype == "d":
            kind, ref = "d", base
        elif typtype == "r" and rng_sub:
            kind, ref = "r", rng_sub
        elif typtype == "m" and mr_range:
            kind, ref = "m", mr_range
        elif typtype == "c":
            kind, ref = "c", 0
        elif category == "A" and elem:
            kind, ref = "a", elem
        else:
            kind, ref = "o", 0
        out.append((oid, kind, name, schema, ref, list(zip(fnames, ftypes, strict=True))))
    found = {r[0] for r in rows}
    out += [(oid, "o", f"type {oid}", "?", 0, []) for oid in wanted if oid not in found]
    return out


def stale(svc: Any, sql: str) -> bool:
    """An argument did not fit the statement's cached types: forget them
    so that the statement is described again (its table may have changed)
    and the call encoded once more; a second refusal is final. Costs a
    round trip on that error path only."""
    if svc.statement_params(sql) is None:
        return False
    svc.forget_statement(sql)
    return True


def learned(svc: Any, sql: str, described: tuple[list[int], list[int]]) -> list[int]:
    """Cache a described statement; the type OIDs still to look up."""
    params, cols = described
    missing: list[int] = svc.remember(sql, params, cols)
    return missing
