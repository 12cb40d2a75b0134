//! A connection's prepared statements (`PgConn`'s cache): preparing a
//! statement with its declared parameter types (again when they change),
//! preparing one to describe it (its first use on this connection: the
//! Describe's Parse is the one the executions then bind to), evicting the
//! least recently used one, and forgetting a stale one.

use std::sync::Arc;

use bytes::BytesMut;

use super::{Cached, PgConn, Query};
use crate::codec::pg;

impl PgConn {
    /// The statement name to Bind for `sql`, writing Parse (and a Close for an
    /// evicted statement) first when needed. Returns the name and whether
    /// this call prepared it under that name (to be cached).
    ///
    /// While a statement's Parse is in flight, callers of the same SQL parse
    /// it again as the unnamed statement instead of binding to it: if that
    /// Parse fails (a missing table), each of them gets the server's own
    /// error for its own query, not "prepared statement does not exist".
    pub(super) fn prepare(
        &mut self,
        sql: &Arc<str>,
        types: &Arc<[u32]>,
        capacity: usize,
        out: &mut BytesMut,
    ) -> (String, bool) {
        self.tick += 1;
        self.flush_closes(out);
        if capacity == 0 {
            pg::parse(out, "", sql, types);
            return (String::new(), false);
        }
        if let Some(c) = self.cache.get_mut(sql) {
            match &c.types {
                Some(t) if t[..] != types[..] => {
                    // Described again with other types (the schema changed):
                    // prepare it anew.
                    if let Some(c) = self.cache.remove(sql) {
                        pg::close_statement(out, &c.name);
                    }
                    return self.prepare(sql, types, capacity, out);
                }
                Some(_) if c.confirmed => {
                    c.used = self.tick;
                    return (c.name.clone(), false);
                }
                // Its Parse (or its Describe's answer) is still on the way.
                _ => {
                    c.used = self.tick;
                    pg::parse(out, "", sql, types);
                    return (String::new(), false);
                }
            }
        }
        (self.add(sql, Some(types.clone()), capacity, out), true)
    }

    /// Prepare `sql` under a new name to Describe it, its parameter types
    /// left to the server (they are what the Describe reports, set on the
    /// entry when it does: `described`). A statement of the same SQL
    /// prepared earlier is closed: it is described again because its types
    /// may have changed. Empty name (the unnamed statement) without a cache.
    pub(super) fn prepare_to_describe(
        &mut self,
        sql: &Arc<str>,
        capacity: usize,
        out: &mut BytesMut,
    ) -> String {
        self.tick += 1;
        self.flush_closes(out);
        if capacity == 0 {
            pg::parse(out, "", sql, &[]);
            return String::new();
        }
        if let Some(c) = self.cache.remove(sql) {
            pg::close_statement(out, &c.name);
        }
        self.add(sql, None, capacity, out)
    }

    /// The Describe of statement `name` (of `sql`) reported these parameter
    /// types: executions declaring the same types bind to it.
    pub(super) fn described(&mut self, sql: &str, name: &str, types: &[u32]) {
        if let Some(c) = self.cache.get_mut(sql) {
            if c.name == name && c.types.is_none() {
                c.types = Some(types.into());
            }
        }
    }

    fn flush_closes(&mut self, out: &mut BytesMut) {
        for name in self.to_close.drain(..) {
            pg::close_statement(out, &name);
        }
    }

    /// Write the Parse of `sql` under a new name and cache it (evicting the
    /// least recently used statement when full).
    fn add(
        &mut self,
        sql: &Arc<str>,
        types: Option<Arc<[u32]>>,
        capacity: usize,
        out: &mut BytesMut,
    ) -> String {
        if self.cache.len() >= capacity {
            if let Some(old) = self
                .cache
                .iter()
                .min_by_key(|(_, c)| c.used)
                .map(|(k, _)| k.clone())
            {
                if let Some(c) = self.cache.remove(&old) {
                    pg::close_statement(out, &c.name);
                }
            }
        }
        self.next_name += 1;
        let name = format!("iok{}", self.next_name);
        pg::parse(out, &name, sql, types.as_deref().unwrap_or(&[]));
        self.cache.insert(
            sql.clone(),
            Cached {
                name: name.clone(),
                types,
                used: self.tick,
                confirmed: false,
            },
        );
        name
    }
}

impl PgConn {
    /// Forget the cached statement `name` of `query` (if it is still that
    /// one: callers pipelined behind the first to fail used it too), and
    /// Close it on the server with the next request when `close`.
    pub(super) fn evict(&mut self, query: &Query, name: &str, close: bool) {
        let Query::Extended { sql, .. } = query else {
            return;
        };
        if self.cache.get(sql).is_some_and(|c| c.name == name) {
            self.cache.remove(sql);
            if close {
                self.to_close.push(name.to_string());
            }
        }
    }

    /// The statement `name` of `sql` was parsed (ParseComplete).
    pub(super) fn confirm(&mut self, sql: &str, name: &str) {
        if let Some(c) = self.cache.get_mut(sql) {
            if c.name == name {
                c.confirmed = true;
            }
        }
    }

    /// The Parse of statement `name` of `sql` failed: it does not exist.
    pub(super) fn forget_failed(&mut self, sql: &str, name: &str) {
        if self.cache.get(sql).is_some_and(|c| c.name == name) {
            self.cache.remove(sql);
        }
    }
}
