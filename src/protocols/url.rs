//! Pieces every URL parser here needs: percent-decoding, redaction of
//! secrets for display, host lists (`h1:6379,h2:6380`, the libpq
//! multi-host form) and the discovery schemes (`redis+srv://`,
//! `+discovery://`, `+file://`, see `kernel::discovery`).

use std::path::PathBuf;

use crate::kernel::discovery::Source;

/// Decode `%XX` escapes; the result must be UTF-8.
pub fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("a '%' escape is cut short")?;
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent-escape %{hex}"))?,
            );
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "percent-escapes do not form UTF-8".to_string())
}

/// The URL with any password replaced by `***` (userinfo, `password=` and
/// `sentinel_password=`).
pub fn redact(url: &str) -> String {
    let mut s = url.to_string();
    if let Some(start) = s.find("://") {
        let after = start + 3;
        let end = s[after..]
            .find(['/', '?'])
            .map(|i| i + after)
            .unwrap_or(s.len());
        if let Some(at) = s[after..end].rfind('@') {
            let userinfo = &s[after..after + at];
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or("");
            s = format!("{}{user}:***{}", &s[..after], &s[after + at..]);
        }
    }
    if let Some(q) = s.find('?') {
        let (head, query) = s.split_at(q + 1);
        let parts: Vec<String> = query
            .split('&')
            .map(|kv| {
                let key = kv.split_once('=').map_or("", |(k, _)| k);
                if key == "password" || key == "sentinel_password" {
                    format!("{key}=***")
                } else {
                    kv.to_string()
                }
            })
            .collect();
        s = format!("{head}{}", parts.join("&"));
    }
    s
}

/// A scheme with a discovery suffix (`redis+srv`, `postgresql+discovery`,
/// `redis+file`): the base scheme and the suffix. Other schemes (also
/// `redis+unix`) come back whole.
pub fn scheme_source(scheme: &str) -> (&str, Option<&str>) {
    match scheme.rsplit_once('+') {
        Some((base, kind @ ("srv" | "discovery" | "file"))) => (base, Some(kind)),
        _ => (scheme, None),
    }
}

/// The source a `+srv` / `+discovery` / `+file` URL names by its host part
/// (percent-decoded; a file's path is written `%2Fetc%2Fredis.hosts`). No
/// port: SRV records, the file or the published set give the ports.
pub fn source(kind: &str, host: &str) -> Result<Source, String> {
    let name = unescape(host)?;
    if name.is_empty() {
        return Err(format!(
            "+{kind} URLs name a source in place of the host (like {})",
            example(kind)
        ));
    }
    if kind != "file" && (name.contains(',') || name.contains(':')) {
        return Err(format!(
            "+{kind} URLs take one name and no port (like {}); the ports come from the source",
            example(kind)
        ));
    }
    Ok(match kind {
        "srv" => Source::Srv(name),
        "discovery" => Source::Published(name),
        _ => Source::File(PathBuf::from(name)),
    })
}

fn example(kind: &str) -> &'static str {
    match kind {
        "srv" => "redis+srv://_redis._tcp.cache.internal/0",
        "discovery" => "redis+discovery://orders-cache/0",
        _ => "redis+file://%2Fetc%2Fapp%2Fredis.hosts/0",
    }
}

/// One entry of a URL's comma-separated host list: `host`, `host:port`,
/// `[v6]` or `[v6]:port`; the host percent-decoded.
pub fn host_port(hp: &str) -> Result<(String, Option<&str>), String> {
    if let Some(h) = hp.strip_prefix('[') {
        let (h, p) = h
            .split_once(']')
            .ok_or_else(|| "unclosed '[' in IPv6 host".to_string())?;
        if !p.is_empty() && !p.starts_with(':') {
            return Err(format!("unexpected {p:?} after an IPv6 host"));
        }
        return Ok((h.to_string(), p.strip_prefix(':')));
    }
    match hp.rsplit_once(':') {
        Some((h, p)) => Ok((unescape(h)?, Some(p))),
        None => Ok((unescape(hp)?, None)),
    }
}

/// A port as written in a URL (`None` or empty: the default).
pub fn port(p: Option<&str>, default: u16) -> Result<u16, String> {
    match p {
        None | Some("") => Ok(default),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| format!("port must be 1-65535, not {p:?}")),
    }
}
