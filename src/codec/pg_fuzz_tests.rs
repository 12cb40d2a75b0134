//! PostgreSQL codec: randomized backend messages round-tripped whole and in
//! random chunks, and garbage that must never panic the decoder.

use super::*;
use crate::codec::test_rng::Rng;

impl Rng {
    /// A string without NUL, sometimes non-ASCII.
    fn text(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| match self.below(8) {
                0 => 'é',
                1 => '名',
                2 => ' ',
                _ => (b'a' + self.below(26) as u8) as char,
            })
            .collect()
    }

    fn opt(&mut self) -> Option<String> {
        (self.below(2) == 0).then(|| self.text(6))
    }
}

fn random_backend(rng: &mut Rng) -> Backend {
    use Backend::*;
    match rng.below(28) {
        0 => AuthenticationOk,
        1 => AuthenticationCleartextPassword,
        2 => AuthenticationMd5Password {
            salt: (rng.next() as u32).to_be_bytes(),
        },
        3 => AuthenticationSasl {
            mechanisms: (0..rng.below(3))
                .map(|_| {
                    let t = rng.text(10);
                    if t.is_empty() {
                        "x".into()
                    } else {
                        t
                    }
                })
                .collect(),
        },
        4 => AuthenticationSaslContinue(rng.bytes(40).into()),
        5 => AuthenticationSaslFinal(rng.bytes(40).into()),
        6 => AuthenticationOther([2, 7, 8, 9, 99][rng.below(5)]),
        7 => ParameterStatus {
            name: rng.text(10),
            value: rng.text(10),
        },
        8 => BackendKeyData {
            pid: rng.next() as i32,
            secret: rng.next() as i32,
        },
        9 => ReadyForQuery(b"ITE"[rng.below(3)]),
        10 => RowDescription(
            (0..rng.below(4))
                .map(|_| Column {
                    name: rng.text(8),
                    table_oid: rng.next() as u32,
                    column_id: rng.next() as i16,
                    type_oid: rng.next() as u32,
                    type_size: rng.next() as i16,
                    type_mod: rng.next() as i32,
                    format: rng.below(2) as i16,
                })
                .collect(),
        ),
        11 | 12 => {
            let vals: Vec<Option<Vec<u8>>> = (0..rng.below(6))
                .map(|_| (rng.below(4) != 0).then(|| rng.bytes(20)))
                .collect();
            let refs: Vec<Option<&[u8]>> = vals.iter().map(|v| v.as_deref()).collect();
            DataRow(super::DataRow::from_values(&refs))
        }
        13 => CommandComplete(rng.text(12)),
        14 => EmptyQueryResponse,
        15 => ParseComplete,
        16 => BindComplete,
        17 => CloseComplete,
        18 => NoData,
        19 => ParameterDescription((0..rng.below(5)).map(|_| rng.next() as u32).collect()),
        20 => PortalSuspended,
        21 | 22 => {
            let f = ErrorFields {
                severity: rng.text(6),
                code: rng.text(5),
                message: rng.text(20),
                detail: rng.opt(),
                hint: rng.opt(),
                position: rng.opt(),
                schema: rng.opt(),
                table: rng.opt(),
                column: rng.opt(),
                constraint: rng.opt(),
            };
            if rng.below(2) == 0 {
                ErrorResponse(f)
            } else {
                NoticeResponse(f)
            }
        }
        23 => NotificationResponse {
            pid: rng.next() as i32,
            channel: rng.text(8),
            payload: rng.text(30),
        },
        24 => CopyInResponse,
        25 => CopyOutResponse,
        26 => CopyBothResponse,
        _ => Unknown {
            tag: b"dcvVfxq"[rng.below(7)],
            body: rng.bytes(20).into(),
        },
    }
}

#[test]
fn random_round_trip() {
    let mut rng = Rng(0x5eed);
    let mut stream = BytesMut::new();
    let mut sent = Vec::new();
    for i in 0..3000 {
        let msg = random_backend(&mut rng);
        let mut buf = BytesMut::new();
        encode_backend(&msg, &mut buf);
        stream.extend_from_slice(&buf);
        buf.extend_from_slice(b"Z\0\0\0\x05I");
        let got = decode(&mut buf, &Limits::default());
        assert_eq!(got, Ok(Some(msg.clone())), "case {i}");
        assert_eq!(&buf[..], b"Z\0\0\0\x05I", "case {i} left the wrong bytes");
        sent.push(msg);
    }
    // The whole stream, delivered in random chunk sizes.
    let mut got = Vec::new();
    let mut buf = BytesMut::new();
    let mut fed = 0;
    while fed < stream.len() || !buf.is_empty() {
        match decode(&mut buf, &Limits::default()).unwrap() {
            Some(m) => got.push(m),
            None => {
                let n = (1 + rng.below(300)).min(stream.len() - fed);
                assert!(n > 0, "stuck with {} bytes", buf.len());
                buf.extend_from_slice(&stream[fed..fed + n]);
                fed += n;
            }
        }
    }
    assert_eq!(got, sent);
}

fn corpus() -> Vec<u8> {
    let mut rng = Rng(7);
    let mut out = BytesMut::new();
    for _ in 0..60 {
        encode_backend(&random_backend(&mut rng), &mut out);
    }
    out.to_vec()
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(1234);
    let valid = corpus();
    for i in 0..3000 {
        let data: Vec<u8> = if i % 2 == 0 {
            // Noise made of type bytes, small lengths and NULs.
            rng.pick(80, b"RSKZTDCI123ntsENAGHWd\0\0\0\x04\x05\x08\x0a\xff\x80I")
                .to_vec()
        } else {
            // A slice of valid input with a few bytes flipped.
            rng.mutated(&valid, 150)
        };
        fuzz_decode(&data);
    }
}

#[test]
fn fuzz_body_on_corpus() {
    let input = corpus();
    fuzz_decode(&input);
    for chunk in input.chunks(50) {
        fuzz_decode(chunk);
    }
    fuzz_decode(b"");
    fuzz_decode(b"D\x7f\xff\xff\xff");
}
