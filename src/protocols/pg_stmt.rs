//! A connection's prepared statements (`PgConn`'s cache): preparing a
//! statement with its declared parameter types (again when they change),
//! evicting the least recently used one, and forgetting a stale one.

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
        for name in self.to_close.drain(..) {
            pg::close_statement(out, &name);
        }
        if capacity == 0 {
            pg::parse(out, "", sql, types);
            return (String::new(), false);
        }
        if let Some(c) = self.cache.get_mut(sql) {
            if c.types[..] != types[..] {
                // Described again with other types (the schema changed):
                // prepare it anew.
                if let Some(c) = self.cache.remove(sql) {
                    pg::close_statement(out, &c.name);
                }
                return self.prepare(sql, types, capacity, out);
            }
            c.used = self.tick;
            if c.confirmed {
                return (c.name.clone(), false);
            }
            pg::parse(out, "", sql, types);
            return (String::new(), false);
        }
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
        pg::parse(out, &name, sql, types);
        self.cache.insert(
            sql.clone(),
            Cached {
                name: name.clone(),
                types: types.clone(),
                used: self.tick,
                confirmed: false,
            },
        );
        (name, true)
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
}
