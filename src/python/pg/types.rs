//! What the binding knows about PostgreSQL types: the built-in ones (a static
//! table: OID, name, array OID, whether results come in binary), the types a
//! database defines (learned by introspection, `Registry`), and each
//! statement's parameter and result types (`StmtInfo`, learned by Describe
//! once per statement per service and cached in `TypeCache`).
//!
//! Parameters are encoded for their declared types on the calling thread
//! (`encode`), before the request reaches a connection; so the statement's
//! types must be known first. The first time a service sees a statement it
//! asks one connection (Parse/Describe/Sync, one round trip); every
//! connection then declares those types in its own Parse, so the server reads
//! the bytes as the type they were encoded for, whichever connection runs it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use pyo3::prelude::*;

/// Built-in type OIDs (from PostgreSQL's `pg_type.dat`).
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT2VECTOR: u32 = 22;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const TID: u32 = 27;
    pub const XID: u32 = 28;
    pub const CID: u32 = 29;
    pub const OIDVECTOR: u32 = 30;
    pub const JSON: u32 = 114;
    pub const XML: u32 = 142;
    pub const POINT: u32 = 600;
    pub const LSEG: u32 = 601;
    pub const PATH: u32 = 602;
    pub const BOX: u32 = 603;
    pub const POLYGON: u32 = 604;
    pub const LINE: u32 = 628;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const CIRCLE: u32 = 718;
    pub const MACADDR8: u32 = 774;
    pub const MONEY: u32 = 790;
    pub const MACADDR: u32 = 829;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const BIT: u32 = 1560;
    pub const VARBIT: u32 = 1562;
    pub const NUMERIC: u32 = 1700;
    pub const RECORD: u32 = 2249;
    pub const VOID: u32 = 2278;
    pub const UUID: u32 = 2950;
    pub const TXID_SNAPSHOT: u32 = 2970;
    pub const PG_LSN: u32 = 3220;
    pub const JSONB: u32 = 3802;
    pub const INT4RANGE: u32 = 3904;
    pub const NUMRANGE: u32 = 3906;
    pub const TSRANGE: u32 = 3908;
    pub const TSTZRANGE: u32 = 3910;
    pub const DATERANGE: u32 = 3912;
    pub const INT8RANGE: u32 = 3926;
    pub const INT4MULTIRANGE: u32 = 4451;
    pub const NUMMULTIRANGE: u32 = 4532;
    pub const TSMULTIRANGE: u32 = 4533;
    pub const TSTZMULTIRANGE: u32 = 4534;
    pub const DATEMULTIRANGE: u32 = 4535;
    pub const INT8MULTIRANGE: u32 = 4536;
    pub const PG_SNAPSHOT: u32 = 5038;
    pub const XID8: u32 = 5069;
}

use oid::*;

/// (type, name, array type). Built-in types asyncpg knows; anything else
/// built in (regclass, tsvector, ...) travels as text and is a `str`.
const BUILTIN: &[(u32, &str, u32)] = &[
    (BOOL, "bool", 1000),
    (BYTEA, "bytea", 1001),
    (CHAR, "\"char\"", 1002),
    (NAME, "name", 1003),
    (INT8, "int8", 1016),
    (INT2, "int2", 1005),
    (INT2VECTOR, "int2vector", 1006),
    (INT4, "int4", 1007),
    (TEXT, "text", 1009),
    (OID, "oid", 1028),
    (TID, "tid", 1010),
    (XID, "xid", 1011),
    (CID, "cid", 1012),
    (OIDVECTOR, "oidvector", 1013),
    (JSON, "json", 199),
    (XML, "xml", 143),
    (POINT, "point", 1017),
    (LSEG, "lseg", 1018),
    (PATH, "path", 1019),
    (BOX, "box", 1020),
    (POLYGON, "polygon", 1027),
    (LINE, "line", 629),
    (CIDR, "cidr", 651),
    (FLOAT4, "float4", 1021),
    (FLOAT8, "float8", 1022),
    (UNKNOWN, "unknown", 0),
    (CIRCLE, "circle", 719),
    (MACADDR8, "macaddr8", 775),
    (MONEY, "money", 791),
    (MACADDR, "macaddr", 1040),
    (INET, "inet", 1041),
    (BPCHAR, "bpchar", 1014),
    (VARCHAR, "varchar", 1015),
    (DATE, "date", 1182),
    (TIME, "time", 1183),
    (TIMESTAMP, "timestamp", 1115),
    (TIMESTAMPTZ, "timestamptz", 1185),
    (INTERVAL, "interval", 1187),
    (TIMETZ, "timetz", 1270),
    (BIT, "bit", 1561),
    (VARBIT, "varbit", 1563),
    (NUMERIC, "numeric", 1231),
    (RECORD, "record", 2287),
    (VOID, "void", 0),
    (UUID, "uuid", 2951),
    (TXID_SNAPSHOT, "txid_snapshot", 2949),
    (PG_LSN, "pg_lsn", 3221),
    (JSONB, "jsonb", 3807),
    (INT4RANGE, "int4range", 3905),
    (NUMRANGE, "numrange", 3907),
    (TSRANGE, "tsrange", 3909),
    (TSTZRANGE, "tstzrange", 3911),
    (DATERANGE, "daterange", 3913),
    (INT8RANGE, "int8range", 3927),
    (INT4MULTIRANGE, "int4multirange", 6150),
    (NUMMULTIRANGE, "nummultirange", 6151),
    (TSMULTIRANGE, "tsmultirange", 6152),
    (TSTZMULTIRANGE, "tstzmultirange", 6153),
    (DATEMULTIRANGE, "datemultirange", 6155),
    (INT8MULTIRANGE, "int8multirange", 6157),
    (PG_SNAPSHOT, "pg_snapshot", 5039),
    (XID8, "xid8", 271),
];

/// The subtype of a built-in range type.
pub fn range_subtype(t: u32) -> Option<u32> {
    Some(match t {
        INT4RANGE => INT4,
        NUMRANGE => NUMERIC,
        TSRANGE => TIMESTAMP,
        TSTZRANGE => TIMESTAMPTZ,
        DATERANGE => DATE,
        INT8RANGE => INT8,
        _ => return None,
    })
}

/// The range type of a built-in multirange type.
pub fn multirange_range(t: u32) -> Option<u32> {
    Some(match t {
        INT4MULTIRANGE => INT4RANGE,
        NUMMULTIRANGE => NUMRANGE,
        TSMULTIRANGE => TSRANGE,
        TSTZMULTIRANGE => TSTZRANGE,
        DATEMULTIRANGE => DATERANGE,
        INT8MULTIRANGE => INT8RANGE,
        _ => return None,
    })
}

/// A built-in type's name.
pub fn builtin_name(t: u32) -> Option<&'static str> {
    BUILTIN.iter().find(|b| b.0 == t).map(|b| b.1)
}

/// The element type of a built-in array type.
pub fn builtin_element(array: u32) -> Option<u32> {
    if array == 0 {
        return None;
    }
    BUILTIN.iter().find(|b| b.2 == array).map(|b| b.0)
}

/// Built-in types decoded from binary results (the rest come as text: the
/// server's own output, a `str`).
pub fn builtin_binary(t: u32) -> bool {
    !matches!(t, UNKNOWN | MONEY | MACADDR | MACADDR8) && builtin_name(t).is_some()
}

/// What introspection learned about a type the database defines.
#[derive(Debug, Clone)]
pub enum Kind {
    Enum,
    /// A domain over this type.
    Domain(u32),
    Array(u32),
    Range(u32),
    /// A multirange of this range type.
    Multirange(u32),
    /// A composite: its fields' names and types.
    Composite(Vec<(String, u32)>),
    /// Anything else (an extension's type: citext, hstore ...): text, `str`.
    Other,
}

/// A type the database defines.
#[derive(Debug, Clone)]
pub struct UserType {
    pub name: String,
    pub schema: String,
    pub kind: Kind,
}

/// A codec given with `set_type_codec`.
#[derive(Clone)]
pub struct Custom {
    pub encoder: Arc<Py<PyAny>>,
    pub decoder: Arc<Py<PyAny>>,
    pub binary: bool,
    /// The decoder is `json.loads` (text format): decoded by the native
    /// parser (`json.rs`), which gives the same objects without a call.
    pub json_loads: bool,
}

/// The types of one database (per service): introspected ones and custom
/// codecs. Replaced as a whole when it grows (readers hold an `Arc`).
#[derive(Default, Clone)]
pub struct Registry {
    pub user: HashMap<u32, UserType>,
    pub custom: HashMap<u32, Custom>,
}

impl Registry {
    /// The element type of an array type, built-in or not.
    pub fn element(&self, t: u32) -> Option<u32> {
        builtin_element(t).or_else(|| match self.user.get(&t)?.kind {
            Kind::Array(e) => Some(e),
            _ => None,
        })
    }

    /// The type's name for messages (`int4`, `public.mood`, `int4[]`).
    pub fn name(&self, t: u32) -> String {
        if let Some(n) = builtin_name(t) {
            return n.to_string();
        }
        if let Some(e) = builtin_element(t) {
            return format!("{}[]", self.name(e));
        }
        match self.user.get(&t) {
            Some(u) => format!("{}.{}", u.schema, u.name),
            None => format!("type {t}"),
        }
    }

    /// Whether a result column of type `t` is asked for in binary.
    pub fn binary_result(&self, t: u32) -> bool {
        if let Some(c) = self.custom.get(&t) {
            return c.binary;
        }
        if let Some(e) = builtin_element(t) {
            return self.binary_result(e);
        }
        if t < 16384 {
            return builtin_binary(t);
        }
        match self.user.get(&t).map(|u| &u.kind) {
            Some(Kind::Enum) => true,
            Some(Kind::Domain(b)) => self.binary_result(*b),
            Some(Kind::Array(e)) => self.binary_result(*e),
            Some(Kind::Range(s)) => self.binary_result(*s),
            Some(Kind::Multirange(r)) => self.binary_result(*r),
            Some(Kind::Composite(fields)) => fields.iter().all(|f| self.binary_result(f.1)),
            Some(Kind::Other) | None => false,
        }
    }

    /// Type OIDs under `t` (elements, fields, bases) not known yet.
    pub fn missing(&self, t: u32, out: &mut Vec<u32>) {
        if t < 16384 {
            if let Some(e) = builtin_element(t) {
                self.missing(e, out);
            }
            return;
        }
        match self.user.get(&t).map(|u| &u.kind) {
            None => {
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            Some(Kind::Domain(x) | Kind::Array(x) | Kind::Range(x) | Kind::Multirange(x)) => {
                self.missing(*x, out)
            }
            Some(Kind::Composite(fields)) => {
                for f in fields {
                    self.missing(f.1, out);
                }
            }
            Some(Kind::Enum | Kind::Other) => {}
        }
    }
}

/// One introspected type: `(oid, kind, name, schema, ref, fields)`.
pub type TypeRow = (u32, String, String, String, u32, Vec<(String, u32)>);

/// A statement's types, as Describe reported them.
pub struct StmtInfo {
    pub params: Arc<[u32]>,
    /// The Bind's result format codes for those columns.
    pub formats: Arc<[i16]>,
    /// What each of its requests carries (made once, shared).
    pub ctx: Arc<QueryCtx>,
}

/// What a query's result carries back for its conversion: the registry
/// its parameters were encoded with, and where to forget the statement's
/// types when the server says they went stale.
pub struct QueryCtx {
    pub reg: Arc<Registry>,
    pub cache: Weak<TypeCache>,
    pub sql: Arc<str>,
}

/// Per service: SQL → its types; and the database's types.
pub struct TypeCache {
    stmts: Mutex<HashMap<Arc<str>, Arc<StmtInfo>>>,
    capacity: usize,
    registry: Mutex<Arc<Registry>>,
}

impl TypeCache {
    /// `capacity`: statements remembered (0: none; every query describes).
    pub fn new(capacity: usize) -> Self {
        TypeCache {
            stmts: Mutex::new(HashMap::new()),
            capacity,
            registry: Mutex::new(Arc::new(Registry::default())),
        }
    }

    pub fn get(&self, sql: &str) -> Option<Arc<StmtInfo>> {
        self.stmts.lock().ok()?.get(sql).cloned()
    }

    pub fn put(&self, sql: Arc<str>, info: Arc<StmtInfo>) {
        if self.capacity == 0 {
            return;
        }
        if let Ok(mut m) = self.stmts.lock() {
            if m.len() >= self.capacity && !m.contains_key(&sql) {
                // Dynamic SQL would grow it forever: start over.
                m.clear();
            }
            m.insert(sql, info);
        }
    }

    /// Forget one statement.
    pub fn forget(&self, sql: &str) {
        if let Ok(mut m) = self.stmts.lock() {
            m.remove(sql);
        }
    }

    /// Forget every statement (the schema may have changed).
    pub fn clear(&self) {
        if let Ok(mut m) = self.stmts.lock() {
            m.clear();
        }
    }

    pub fn registry(&self) -> Arc<Registry> {
        self.registry.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Change the registry (copy on write).
    pub fn update(&self, f: impl FnOnce(&mut Registry)) {
        if let Ok(mut r) = self.registry.lock() {
            let mut next = Registry::clone(&r);
            f(&mut next);
            *r = Arc::new(next);
        }
    }

    /// Cache a described statement's types and result formats; returns the
    /// database types it uses that are not known yet (nothing is cached
    /// then: learn them first).
    pub fn remember(
        &self,
        me: Weak<TypeCache>,
        sql: &str,
        params: Vec<u32>,
        columns: &[u32],
    ) -> Vec<u32> {
        let reg = self.registry();
        let mut missing = Vec::new();
        for t in params.iter().chain(columns) {
            reg.missing(*t, &mut missing);
        }
        if !missing.is_empty() {
            return missing;
        }
        let fmts: Vec<i16> = columns
            .iter()
            .map(|t| i16::from(reg.binary_result(*t)))
            .collect();
        let formats: Arc<[i16]> = if fmts.iter().all(|f| *f == 1) {
            Arc::from([1i16].as_slice())
        } else if fmts.iter().all(|f| *f == 0) {
            Arc::from([].as_slice())
        } else {
            fmts.into()
        };
        let sql: Arc<str> = Arc::from(sql);
        let info = StmtInfo {
            params: params.into(),
            formats,
            ctx: Arc::new(QueryCtx {
                reg,
                cache: me,
                sql: sql.clone(),
            }),
        };
        self.put(sql, Arc::new(info));
        missing
    }

    /// Types learned by introspection (`kind`: e enum, d domain over `ref`,
    /// a array of `ref`, r range of `ref`, m multirange of range `ref`, c
    /// composite with `fields`, o other).
    pub fn learn(&self, rows: Vec<TypeRow>) {
        self.update(|reg| {
            for (oid, kind, name, schema, r, fields) in rows {
                let kind = match kind.as_str() {
                    "e" => Kind::Enum,
                    "d" => Kind::Domain(r),
                    "a" => Kind::Array(r),
                    "r" => Kind::Range(r),
                    "m" => Kind::Multirange(r),
                    "c" => Kind::Composite(fields),
                    _ => Kind::Other,
                };
                reg.user.insert(oid, UserType { name, schema, kind });
            }
        });
    }

    /// A `set_type_codec` codec for type `oid`; forgets every statement
    /// (their result formats may change).
    pub fn set_codec(
        &self,
        oid: u32,
        encoder: Py<PyAny>,
        decoder: Py<PyAny>,
        binary: bool,
        json_loads: bool,
    ) {
        self.update(|reg| {
            let (encoder, decoder) = (Arc::new(encoder), Arc::new(decoder));
            reg.custom.insert(
                oid,
                Custom {
                    encoder,
                    decoder,
                    binary,
                    json_loads: json_loads && !binary,
                },
            );
        });
        self.clear();
    }
}
