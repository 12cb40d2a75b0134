//! Redis TLS options, named as in redis-py: `rediss://` (or `ssl=True`),
//! `ssl_ca_certs`, `ssl_ca_path` (a directory), `ssl_ca_data` (all three
//! load together, as in redis-py), `ssl_certfile`, `ssl_keyfile`,
//! `ssl_password` (of an encrypted PKCS#8 key),
//! `ssl_cert_reqs` (`none` | `optional` | `required`; `optional` verifies,
//! as Python's `ssl` does on the client side), `ssl_check_hostname`,
//! `ssl_min_version` (`TLSv1_2` | `TLSv1_3`), `ssl_ciphers` (a `:` list of
//! TLS 1.2 suites by OpenSSL or IANA name; `tls12_suites`). They come as
//! URL query parameters and as keyword arguments (which win); this turns
//! them into the kernel's `TlsOptions`. `sentinel_options`: the
//! sentinels' side of `rediss+sentinel://` (the same options unless
//! `sentinel_ssl*` changes them).

use std::path::PathBuf;

use crate::kernel::tls::{Hints, Roots, TlsOptions, Verify};

/// The redis-py names this accepts (as URL parameters too).
pub const NAMES: [&str; 11] = [
    "ssl",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_ca_data",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_ciphers",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "ssl_min_version",
];

pub const HINTS: Hints = Hints {
    ca: "ssl_ca_certs (or ssl_ca_path, ssl_ca_data)",
    ca_dir: "ssl_ca_path",
    crl: "a revocation list",
    key_password: "ssl_password",
    no_verify: "ssl_cert_reqs='none'",
    no_hostname: "ssl_check_hostname=False",
    client_cert: "ssl_certfile / ssl_keyfile",
    plain: "use redis:// (not rediss://) for a plain-text server",
};

/// The sentinels' hints: their own options are `sentinel_ssl_*` (URL) or
/// `sentinel_kwargs` (redis-py's form, keyword argument).
pub const SENTINEL_HINTS: Hints = Hints {
    ca: "ssl_ca_certs (the sentinels' own: sentinel_ssl_ca_certs in the URL, or \
         sentinel_kwargs={'ssl_ca_certs': ...})",
    ca_dir: "sentinel_ssl_ca_path",
    crl: "a revocation list",
    key_password: "sentinel_ssl_password",
    no_verify: "sentinel_ssl_cert_reqs='none' (sentinel_kwargs={'ssl_cert_reqs': 'none'})",
    no_hostname:
        "sentinel_ssl_check_hostname=False (sentinel_kwargs={'ssl_check_hostname': False})",
    client_cert: "sentinel_ssl_certfile / sentinel_ssl_keyfile",
    plain: "sentinel_ssl=False for sentinels that speak plain text",
};

/// Options the sentinels take as a group: giving one of a group for them
/// drops all of the group inherited from the data nodes (a CA of their own
/// is not added to the data nodes' CAs).
const GROUPS: [&[&str]; 2] = [
    &["ssl_ca_certs", "ssl_ca_path", "ssl_ca_data"],
    &["ssl_certfile", "ssl_keyfile", "ssl_password"],
];

/// The sentinels' TLS options for `rediss+sentinel://`, or `None` for plain
/// text. `data_on`: the data nodes use TLS; `data`: their parameters (as
/// `options` takes them); `own`: the `sentinel_ssl*` ones, named without
/// the `sentinel_` prefix (`ssl`, `ssl_ca_certs` ...). By default the
/// sentinels use TLS exactly when the data nodes do, with the same options;
/// `ssl=false` makes them plain text, any other of `own` replaces the data
/// nodes' option of that name (or group: `GROUPS`).
pub fn sentinel_options(
    data_on: bool,
    data: &[(String, String)],
    own: &[(String, String)],
) -> Result<Option<TlsOptions>, String> {
    let on = match own.iter().rev().find(|(k, _)| k == "ssl") {
        Some((_, v)) => boolean("sentinel_ssl", v)?,
        None => data_on,
    };
    if !on {
        if let Some((k, _)) = own.iter().find(|(k, _)| k != "ssl") {
            return Err(format!(
                "sentinel_{k} is a TLS option for the sentinels, but they are reached in plain \
                 text (sentinel_ssl=False, or a redis+sentinel:// URL)"
            ));
        }
        return Ok(None);
    }
    let given = |k: &str| own.iter().any(|(n, _)| n == k);
    let replaced = |k: &str| {
        given(k)
            || GROUPS
                .iter()
                .any(|g| g.contains(&k) && g.iter().any(|n| given(n)))
    };
    let params: Vec<(String, String)> = data
        .iter()
        .filter(|(k, _)| k != "ssl" && !replaced(k))
        .chain(own.iter().filter(|(k, _)| k != "ssl"))
        .cloned()
        .collect();
    let mut o = options(true, &params)
        .map_err(|e| format!("the sentinels' TLS options: {e}"))?
        .expect("TLS is on");
    o.hints = SENTINEL_HINTS;
    Ok(Some(o))
}

fn boolean(k: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(format!("{k} must be true or false, not {v:?}")),
    }
}

/// The TLS options for `params` (URL parameters, then keyword arguments;
/// a later value wins), or `None` for plain text. `tls`: the URL says
/// `rediss://`.
pub fn options(tls: bool, params: &[(String, String)]) -> Result<Option<TlsOptions>, String> {
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let on = match get("ssl") {
        Some(v) => boolean("ssl", v)?,
        None => tls,
    };
    if !on {
        if let Some((k, _)) = params.iter().find(|(k, _)| k != "ssl") {
            return Err(format!(
                "{k} is a TLS option but TLS is off; use a rediss:// URL (or ssl=True)"
            ));
        }
        return Ok(None);
    }
    let verify_chain = match get("ssl_cert_reqs").map(str::to_ascii_lowercase).as_deref() {
        None | Some("required" | "cert_required") => true,
        // Python's ssl on the client side: CERT_OPTIONAL verifies too.
        Some("optional" | "cert_optional") => true,
        Some("none" | "cert_none") => false,
        Some(v) => {
            return Err(format!(
                "ssl_cert_reqs must be 'required', 'optional' or 'none', not {v:?}"
            ))
        }
    };
    let check_host = get("ssl_check_hostname")
        .map(|v| boolean("ssl_check_hostname", v))
        .transpose()?;
    if !verify_chain && check_host == Some(true) {
        return Err(
            "ssl_check_hostname=True needs the certificate verified: it cannot go with \
             ssl_cert_reqs='none' (as in Python's ssl)"
                .into(),
        );
    }
    let verify = match (verify_chain, check_host.unwrap_or(true)) {
        (false, _) => Verify::None,
        (true, true) => Verify::Full,
        (true, false) => Verify::Chain,
    };
    let mut given = Vec::new();
    given.extend(get("ssl_ca_certs").map(|f| Roots::File(PathBuf::from(f))));
    given.extend(get("ssl_ca_path").map(|d| Roots::Dir(PathBuf::from(d))));
    given.extend(get("ssl_ca_data").map(|pem| Roots::Pem(pem.to_string())));
    let roots = match given.len() {
        0 => Roots::System,
        1 => given.remove(0),
        _ => Roots::Many(given),
    };
    let client_cert = match (get("ssl_certfile"), get("ssl_keyfile")) {
        (Some(c), k) => Some((PathBuf::from(c), PathBuf::from(k.unwrap_or(c)))),
        (None, Some(_)) => {
            return Err("ssl_keyfile needs ssl_certfile (the client certificate)".into())
        }
        (None, None) => None,
    };
    let tls13_only = match get("ssl_min_version") {
        None => false,
        Some(v) => match v.to_ascii_uppercase().replace(['.', '_'], "").as_str() {
            "TLSV12" | "12" => false,
            "TLSV13" | "13" => true,
            "TLSV1" | "TLSV11" | "10" | "11" | "SSLV3" => {
                return Err(format!(
                    "ssl_min_version={v}: TLS older than 1.2 is not supported (rustls speaks TLS 1.2 and 1.3)"
                ))
            }
            _ => {
                return Err(format!(
                    "ssl_min_version must be TLSv1_2 or TLSv1_3, not {v:?}"
                ))
            }
        },
    };
    Ok(Some(TlsOptions {
        verify,
        roots,
        client_cert,
        key_password: get("ssl_password").map(str::to_string),
        crls: Vec::new(),
        tls12_suites: get("ssl_ciphers").map(tls12_suites).transpose()?,
        tls13_only,
        alpn: Vec::new(),
        alpn_required: false,
        hints: HINTS,
    }))
}

/// OpenSSL's names of the TLS 1.2 suites rustls has, with their IANA names.
const SUITES: [(&str, &str); 6] = [
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// `ssl_ciphers`: a `:`-separated list of suites, each by OpenSSL or IANA
/// name. OpenSSL's cipher-string language (`HIGH`, `!aNULL`, `@STRENGTH`)
/// is not interpreted: a list that uses it is refused, naming the word.
fn tls12_suites(list: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for word in list.split([':', ',', ' ']).filter(|w| !w.is_empty()) {
        let Some((_, iana)) = SUITES.iter().find(|(o, i)| *o == word || *i == word) else {
            return Err(format!(
                "ssl_ciphers: {word:?} is not supported: iokernel's TLS (rustls) takes a \
                 ':'-separated list of these TLS 1.2 suites (OpenSSL names): {}; OpenSSL \
                 cipher-string words (HIGH, !aNULL, DEFAULT ...) and other suites are not \
                 supported (TLS 1.3's suites are always on, as with Python's ssl)",
                SUITES.map(|(o, _)| o).join(":")
            ));
        };
        out.push(*iana);
    }
    if out.is_empty() {
        return Err("ssl_ciphers is empty: give at least one cipher suite".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn redis_py_names() {
        assert!(options(false, &[]).unwrap().is_none());
        let o = options(true, &[]).unwrap().unwrap();
        assert_eq!(
            (o.verify, o.roots, o.tls13_only),
            (Verify::Full, Roots::System, false)
        );
        let o = options(false, &p(&[("ssl", "true"), ("ssl_cert_reqs", "none")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.verify, Verify::None);
        let o = options(true, &p(&[("ssl_check_hostname", "false")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.verify, Verify::Chain);
        let o = options(true, &p(&[("ssl_cert_reqs", "optional")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.verify, Verify::Full);
        let o = options(
            true,
            &p(&[("ssl_certfile", "/c.pem"), ("ssl_min_version", "TLSv1_3")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.client_cert, Some(("/c.pem".into(), "/c.pem".into())));
        assert!(o.tls13_only);
        // A later value (a keyword argument) wins over the URL's.
        let o = options(
            true,
            &p(&[("ssl_cert_reqs", "none"), ("ssl_cert_reqs", "required")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.verify, Verify::Full);
        let o = options(
            true,
            &p(&[
                ("ssl_ca_certs", "/a.pem"),
                ("ssl_ca_path", "/cas"),
                (
                    "ssl_ciphers",
                    "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                ),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            o.roots,
            Roots::Many(vec![
                Roots::File("/a.pem".into()),
                Roots::Dir("/cas".into())
            ])
        );
        assert_eq!(
            o.tls12_suites.unwrap(),
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
            ]
        );
    }

    #[test]
    fn sentinels_share_the_options_unless_told() {
        let data = p(&[("ssl_ca_certs", "/ca.pem"), ("ssl_certfile", "/c.pem")]);
        // by default: TLS as the data nodes, with their options
        let o = sentinel_options(true, &data, &[]).unwrap().unwrap();
        assert_eq!(o.roots, Roots::File("/ca.pem".into()));
        assert_eq!(o.client_cert, Some(("/c.pem".into(), "/c.pem".into())));
        assert_eq!(o.hints.plain, SENTINEL_HINTS.plain);
        assert!(sentinel_options(false, &[], &[]).unwrap().is_none());
        // plain text to the sentinels; their own options then make no sense
        assert!(sentinel_options(true, &data, &p(&[("ssl", "false")]))
            .unwrap()
            .is_none());
        let e = sentinel_options(true, &data, &p(&[("ssl", "false"), ("ssl_ca_data", "x")]))
            .unwrap_err();
        assert!(e.contains("sentinel_ssl_ca_data"), "{e}");
        // a CA of their own replaces the data nodes' CAs (the whole group)
        let o = sentinel_options(true, &data, &p(&[("ssl_ca_path", "/cas")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.roots, Roots::Dir("/cas".into()));
        assert_eq!(o.client_cert, Some(("/c.pem".into(), "/c.pem".into())));
        let o = sentinel_options(true, &data, &p(&[("ssl_cert_reqs", "none")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.verify, Verify::None);
        // TLS to the sentinels only (redis+sentinel:// with sentinel_ssl=true)
        let o = sentinel_options(false, &[], &p(&[("ssl", "true")]))
            .unwrap()
            .unwrap();
        assert_eq!(o.roots, Roots::System);
        let e = sentinel_options(true, &[], &p(&[("ssl_cert_reqs", "maybe")])).unwrap_err();
        assert!(
            e.contains("sentinels") && e.contains("ssl_cert_reqs"),
            "{e}"
        );
    }

    #[test]
    fn bad_combinations_are_refused() {
        let e = |kv: &[(&str, &str)], tls: bool| options(tls, &p(kv)).unwrap_err();
        assert!(e(&[("ssl_ca_certs", "/x")], false).contains("rediss://"));
        assert!(e(
            &[("ssl_cert_reqs", "none"), ("ssl_check_hostname", "true")],
            true
        )
        .contains("ssl_check_hostname"));
        assert!(e(&[("ssl_min_version", "TLSv1_1")], true).contains("1.2"));
        assert!(e(&[("ssl_cert_reqs", "maybe")], true).contains("ssl_cert_reqs"));
        assert!(e(&[("ssl_keyfile", "/k")], true).contains("ssl_certfile"));
        assert!(e(&[("ssl_ciphers", "HIGH:!aNULL")], true).contains("\"HIGH\""));
        assert!(e(&[("ssl_ciphers", "AES128-SHA")], true).contains("ECDHE-RSA-AES128-GCM"));
    }
}
