//! A Redis service's sources and rules by role, from its URL and the
//! client's keyword arguments: `redis+sentinel://` adds the sentinel
//! source (with `sentinel_username`/`sentinel_password`, which win over the
//! URL's); a sentinel URL or a `read_from` sends writes to the primary, and
//! `read_from` says where read-only commands go.

use crate::kernel::attrs::{Attrs, Want};
use crate::kernel::discovery::{Source, WatchSource};
use crate::protocols::redis_url::RedisUrl;

pub(super) fn sources_and_attrs(
    u: &RedisUrl,
    read_from: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
) -> Result<(Vec<Source>, Attrs), String> {
    let mut sources: Vec<Source> = u.source.clone().into_iter().collect();
    match u.sentinel() {
        Some(mut s) => {
            if sentinel_username.is_some() {
                s.auth.username = sentinel_username;
            }
            if sentinel_password.is_some() {
                s.auth.password = sentinel_password;
            }
            sources.push(Source::Watch(WatchSource(std::sync::Arc::new(s))));
        }
        None if sentinel_username.is_some() || sentinel_password.is_some() => {
            return Err(format!(
                "sentinel_username/sentinel_password are for redis+sentinel:// URLs, not {}",
                u.display
            ));
        }
        None => {}
    }
    let read_from = read_from.or_else(|| u.read_from.clone());
    let reads = read_from.as_deref().map(Attrs::read_from).transpose()?;
    let mut attrs = Attrs::default();
    if u.sentinel.is_some() || reads.is_some() {
        attrs.want = Want::Primary; // writes: never a replica
        attrs.reads = reads;
    }
    Ok((sources, attrs))
}
