//! Byte-vector tests for the PostgreSQL codec and its authentication.

use super::*;
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

#[test]
fn scram_rfc7677_vector() {
    let mut c = ScramClient::with_nonce("pencil", "rOprNGfwEbeRWgbNEkqO").with_user("user");
    assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
    let server_first =
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let client_final = c.handle_server_first(server_first).unwrap();
    assert_eq!(
        String::from_utf8(client_final).unwrap(),
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
         p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    );
    assert_eq!(
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        Ok(())
    );
}

#[test]
fn fuzz_body_smoke() {
    fuzz_decode(b"");
    fuzz_decode(b"Z\0\0\0\x05I1\0\0\0\x04");
}
