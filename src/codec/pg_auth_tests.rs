//! PostgreSQL authentication: MD5 and SCRAM-SHA-256 test vectors, SCRAM
//! failures, nonce and user-name escaping, SASLprep.

use crate::codec::pg_auth::*;

#[test]
fn md5_vector() {
    // Computed with Python's hashlib:
    // "md5" + md5(md5(pw + user).hexdigest().encode() + salt).hexdigest()
    assert_eq!(
        md5_password("alice", "s3cret pw", [0x01, 0x02, 0xfe, 0xff]),
        "md5ae6284264671cbea7e0e3aab2ac2e037"
    );
    assert_eq!(
        md5_password("postgres", "", [0; 4]),
        "md5d8ff6a3a620cdeac77d64d380fea2e5d"
    );
}

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

#[test]
fn scram_rfc7677_vector() {
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE).with_user("user");
    assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let client_final = c.handle_server_first(RFC_SERVER_FIRST).unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert!(!c.is_verified());
    assert_eq!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Ok(())
    );
    assert_eq!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,x=ext"),
        Ok(())
    );
    assert!(c.is_verified());
}

#[test]
fn scram_postgres_style_vector() {
    // Empty user name, non-ASCII password as raw UTF-8; expected values
    // computed with Python's hashlib.pbkdf2_hmac and hmac.
    let mut c = ScramClient::with_nonce("päss wörd", "9IZ2O01zb9IgiIZ1WJ/zgpJB");
    assert_eq!(c.client_first(), b"n,,n=,r=9IZ2O01zb9IgiIZ1WJ/zgpJB");
    let server_first = b"r=9IZ2O01zb9IgiIZ1WJ/zgpJB4Tk0Y2Vra9e0oH6Cv0WAf2xh,\
        s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096";
    let client_final = c.handle_server_first(server_first).unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=9IZ2O01zb9IgiIZ1WJ/zgpJB4Tk0Y2Vra9e0oH6Cv0WAf2xh,\
         p=Qn0zeeavQg6kHiLjuwrZy63ikqxFB7OBGM3HhIGLcRk="
    );
    assert_eq!(
        c.verify_server_final(b"v=M/asgjGY17GBa/gEzEN1jVMMgUM4zZCRuCivrp3o3zo="),
        Ok(())
    );
}

#[test]
fn scram_server_final_failures() {
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE).with_user("user");
    assert!(matches!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Err(AuthError::Protocol(_))
    ));
    c.handle_server_first(RFC_SERVER_FIRST).unwrap();
    // One bit off, truncated, empty.
    for bad in [
        &b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5="[..],
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9",
        b"v=",
    ] {
        let got = c.verify_server_final(bad);
        assert!(
            matches!(
                got,
                Err(AuthError::ServerSignatureMismatch | AuthError::Protocol(_))
            ),
            "{got:?}"
        );
    }
    assert_eq!(
        c.verify_server_final(b"v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
        Err(AuthError::ServerSignatureMismatch)
    );
    assert_eq!(
        c.verify_server_final(b"e=invalid-proof"),
        Err(AuthError::Server("invalid-proof".into()))
    );
    assert!(!c.is_verified(), "failed checks must not count as verified");
    assert!(matches!(
        c.verify_server_final(b"x=1"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        c.verify_server_final(b"v=!!!"),
        Err(AuthError::Protocol(_))
    ));
    assert!(matches!(
        c.verify_server_final(b"\xff"),
        Err(AuthError::Protocol(_))
    ));
}

#[test]
fn scram_server_first_failures() {
    let cases: &[(&[u8], &str)] = &[
        (b"r=someoneelse,s=AAAA,i=4096", "nonce"),
        (b"r=rOprNGfw,s=AAAA,i=4096", "nonce"),
        (b"r=rOprNGfwEbeRWgbNEkqO\x01x,s=AAAA,i=4096", "characters"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=***,i=4096", "base64"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=0", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=10000001", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=-1", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=", "iteration"),
        (b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA", "i="),
        (b"r=rOprNGfwEbeRWgbNEkqOx,i=4096", "s="),
        (b"s=AAAA,r=rOprNGfwEbeRWgbNEkqOx,i=4096", "r="),
        (b"m=ext,r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1", "extension"),
        (b"", "r="),
        (b"\xff", "UTF-8"),
    ];
    for &(input, needle) in cases {
        let mut c = ScramClient::with_nonce("pencil", RFC_NONCE);
        match c.handle_server_first(input) {
            Err(AuthError::Protocol(d)) => assert!(d.contains(needle), "{d:?} lacks {needle:?}"),
            other => panic!("{input:?}: {other:?}"),
        }
    }
    // Extensions after the iteration count are ignored.
    let mut c = ScramClient::with_nonce("pencil", RFC_NONCE);
    assert!(c
        .handle_server_first(b"r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1,x=y")
        .is_ok());
}

#[test]
fn scram_random_nonce_and_user_escaping() {
    let a = ScramClient::new("pw");
    let b = ScramClient::new("pw");
    let (fa, fb) = (a.client_first(), b.client_first());
    assert_ne!(fa, fb);
    assert!(fa.starts_with(b"n,,n=,r="));
    assert_eq!(fa.len(), 8 + 32, "24 bytes of nonce in base64");
    assert!(
        !format!("{a:?}").contains("pw\""),
        "Debug shows the password"
    );
    let c = ScramClient::with_nonce("pw", "N").with_user("a=b,c");
    assert_eq!(c.client_first(), b"n,,n=a=3Db=2Cc,r=N");
}

#[test]
fn saslprep_subset() {
    let prep = |s: &str| String::from_utf8(saslprep(s)).unwrap();
    assert_eq!(prep("pencil"), "pencil");
    // ASCII is never touched, not even control characters (as in PostgreSQL).
    assert_eq!(prep("a\tb\x07"), "a\tb\x07");
    assert_eq!(prep("päss wörd"), "päss wörd");
    // Non-ASCII spaces become spaces; U+200B is a space first, as in PostgreSQL.
    assert_eq!(prep("a\u{a0}b\u{3000}c\u{200b}d"), "a b c d");
    // Commonly mapped to nothing.
    assert_eq!(prep("soft\u{ad}hy\u{200d}phen\u{feff}"), "softhyphen");
    assert_eq!(prep("ä\u{2002}ö"), "ä ö");
    // SASLprep fails (empty, control character): the raw bytes, as the server.
    assert_eq!(prep("\u{ad}\u{fe0f}"), "\u{ad}\u{fe0f}");
    assert_eq!(prep("a\u{a0}\u{85}"), "a\u{a0}\u{85}");
    assert_eq!(prep("a\u{a0}\x01"), "a\u{a0}\x01");
}
