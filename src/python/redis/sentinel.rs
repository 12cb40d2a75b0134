//! A Redis service's sources and rules by role, from its URL and the
//! client's keyword arguments: `redis+sentinel://` adds the sentinel
//! source (with `sentinel_username`/`sentinel_password`, which win over the
//! URL's); a sentinel URL or a `read_from` sends writes to the primary, and
//! `read_from` says where read-only commands go. `sentinel_via`: how the
//! sentinel watch reaches the sentinels and the data nodes (TLS for
//! `rediss+sentinel://`).

use std::sync::Arc;

use crate::kernel::attrs::{Attrs, Want};
use crate::kernel::discovery::{Source, WatchSource};
use crate::kernel::tls::{Tls, TlsConnector};
use crate::kernel::transport::{plain, Connector};
use crate::protocols::redis_sentinel::Via;
use crate::protocols::redis_tls;
use crate::protocols::redis_url::RedisUrl;

/// The watch's connectors: the data nodes' is the service's own (`data`);
/// the sentinels' from `sentinel_ssl` (the URL's `sentinel_ssl*`, then
/// the keyword arguments', named without the `sentinel_` prefix) over the
/// data nodes' parameters `params` (`redis_tls::sentinel_options`).
pub(super) fn sentinel_via(
    u: &RedisUrl,
    data: &Arc<dyn Connector>,
    params: &[(String, String)],
    sentinel_ssl: Vec<(String, String)>,
) -> Result<Via, String> {
    let own: Vec<_> = u.sentinel_ssl.iter().cloned().chain(sentinel_ssl).collect();
    if u.sentinel.is_none() {
        if let Some((k, _)) = own.first() {
            return Err(format!(
                "sentinel_{k} is for rediss+sentinel:// URLs, not {}",
                u.display
            ));
        }
        return Ok(Via::default());
    }
    let data_on = data.tls_hints().is_some();
    let sentinels: Arc<dyn Connector> = match redis_tls::sentinel_options(data_on, params, &own)? {
        None => plain(),
        Some(o) => Arc::new(TlsConnector {
            tls: Tls::new(o).map_err(|e| format!("the sentinels' TLS options: {e}"))?,
            names: Default::default(),
        }),
    };
    Ok(Via {
        sentinels,
        data: data.clone(),
    })
}

pub(super) fn sources_and_attrs(
    u: &RedisUrl,
    via: Via,
    read_from: Option<String>,
    sentinel_username: Option<String>,
    sentinel_password: Option<String>,
) -> Result<(Vec<Source>, Attrs), String> {
    let mut sources: Vec<Source> = u.source.clone().into_iter().collect();
    match u.sentinel() {
        Some(mut s) => {
            s.via = via;
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
