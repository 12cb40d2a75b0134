//! Pieces every URL parser here needs: percent-decoding and redaction of
//! secrets for display.

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

/// The URL with any password replaced by `***` (userinfo and `password=`).
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
                if kv.starts_with("password=") {
                    "password=***".to_string()
                } else {
                    kv.to_string()
                }
            })
            .collect();
        s = format!("{head}{}", parts.join("&"));
    }
    s
}
