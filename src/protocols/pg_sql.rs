//! What the client must know about SQL text before sending it: whether it
//! holds a `COPY ... FROM STDIN`, which would leave the server waiting for
//! COPY data that a plain query never sends (`execute()` refuses it and
//! names `copy_to_table()`). A small lexer: quoted strings, quoted names,
//! dollar quotes and comments are skipped, so `SELECT 'copy from stdin'`
//! is not mistaken for one.

/// The words of `sql` outside strings and comments, upper-cased, with `;`
/// as a word of its own.
fn words(sql: &str) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            // Block comments nest in PostgreSQL.
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += 1;
            }
            i += 1;
        } else if c == b'$' {
            // $tag$ ... $tag$ (a bare $1 is a parameter).
            let end = b[i + 1..]
                .iter()
                .position(|&x| !(x.is_ascii_alphanumeric() || x == b'_'))
                .map(|n| i + 1 + n);
            match end {
                Some(e) if b[e] == b'$' && !b[i + 1..e].first().is_some_and(u8::is_ascii_digit) => {
                    let tag = &sql[i..=e];
                    i = match sql[e + 1..].find(tag) {
                        Some(n) => e + 1 + n + tag.len(),
                        None => b.len(),
                    };
                }
                _ => i += 1,
            }
        } else if c == b';' {
            out.push(";".to_string());
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(sql[start..i].to_ascii_uppercase());
        } else {
            i += 1;
        }
    }
    out
}

/// Whether one of the statements in `sql` is `COPY ... FROM STDIN`.
pub fn copies_from_stdin(sql: &str) -> bool {
    let w = words(sql);
    w.split(|x| x == ";").any(|stmt| {
        stmt.first().is_some_and(|x| x == "COPY")
            && stmt.windows(2).any(|p| p[0] == "FROM" && p[1] == "STDIN")
    })
}

#[cfg(test)]
mod tests {
    use super::copies_from_stdin;

    #[test]
    fn finds_copy_from_stdin_only_as_a_statement() {
        assert!(copies_from_stdin("COPY t FROM STDIN"));
        assert!(copies_from_stdin("  copy t (a, b) from stdin with (format csv)"));
        assert!(copies_from_stdin("SELECT 1; /* x */ COPY t FROM stdin;"));
        assert!(copies_from_stdin("-- hi\nCOPY \"t\" FROM STDIN"));
        assert!(!copies_from_stdin("COPY t TO STDOUT"));
        assert!(!copies_from_stdin("COPY t FROM '/tmp/x'"));
        assert!(!copies_from_stdin("SELECT 'COPY t FROM STDIN'"));
        assert!(!copies_from_stdin("SELECT $$; COPY t FROM STDIN$$"));
        assert!(!copies_from_stdin("SELECT $tag$; COPY t FROM STDIN$tag$, $1"));
        assert!(!copies_from_stdin("/* COPY t FROM STDIN */ SELECT 1"));
        assert!(!copies_from_stdin("/* a /* nested */ COPY t FROM STDIN */ SELECT 1"));
        assert!(!copies_from_stdin("SELECT copy FROM stdin_table"));
        assert!(!copies_from_stdin("$"));
        assert!(!copies_from_stdin("SELECT $1"));
    }
}
