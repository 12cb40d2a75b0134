//! RESP codec: the same frames whatever the chunking (one byte at a time,
//! random sizes, stateful or not), random round trips, garbage never panics.

use super::test_util::enc;
use super::*;
use crate::codec::test_rng::Rng;

const LINE_CHARS: &[u8] = b"abcXYZ 019:-+_$*\t\x00\xff";
const ANY_CHARS: &[u8] = b"ab\r\n\x00\xff$*:+-";

fn random_frame(rng: &mut Rng, depth: usize) -> Frame {
    let kinds = if depth == 0 { 10 } else { 14 };
    let width = |rng: &mut Rng| rng.below(5);
    match rng.below(kinds) {
        0 => Frame::Simple(rng.pick(12, LINE_CHARS)),
        1 => Frame::Error(rng.pick(12, LINE_CHARS)),
        2 => Frame::BulkError(rng.pick(12, ANY_CHARS)),
        3 => Frame::Integer(match rng.below(4) {
            0 => i64::MIN,
            1 => i64::MAX,
            2 => rng.next() as i64,
            _ => rng.below(100) as i64 - 50,
        }),
        4 => Frame::Bulk(rng.pick(40, ANY_CHARS)),
        5 => Frame::Null,
        6 => Frame::Double(loop {
            let d = match rng.below(4) {
                0 => f64::INFINITY,
                1 => f64::NEG_INFINITY,
                2 => rng.below(2000) as f64 / 8.0 - 100.0,
                _ => f64::from_bits(rng.next()),
            };
            if !d.is_nan() {
                break d;
            }
        }),
        7 => Frame::Boolean(rng.below(2) == 1),
        8 => {
            let sign: &[u8] = [&b""[..], b"-", b"+"][rng.below(3)];
            let mut digits = sign.to_vec();
            digits.push(b'1' + rng.below(9) as u8);
            digits.extend_from_slice(&rng.pick(30, b"0123456789"));
            Frame::BigNumber(digits.into())
        }
        9 => Frame::Verbatim {
            format: if rng.below(2) == 0 { *b"txt" } else { *b"mkd" },
            data: rng.pick(20, ANY_CHARS),
        },
        10 => Frame::Array(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        11 => Frame::Set(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        12 => Frame::Push(
            (0..width(rng))
                .map(|_| random_frame(rng, depth - 1))
                .collect(),
        ),
        _ => Frame::Map(
            (0..width(rng))
                .map(|_| (random_frame(rng, depth - 1), random_frame(rng, depth - 1)))
                .collect(),
        ),
    }
}

/// A fixed corpus covering every type, plus attributes and RESP2 nulls.
fn corpus() -> Vec<u8> {
    let mut bytes: Vec<u8> = Vec::new();
    for v in [
        &b"+OK\r\n"[..],
        b"-ERR x\r\n",
        b":-12\r\n",
        b"$3\r\nfoo\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"_\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
        b",1.25\r\n",
        b",-inf\r\n",
        b"#t\r\n",
        b"(123456789012345678901234567890\r\n",
        b"!3\r\nERR\r\n",
        b"=8\r\ntxt:abcd\r\n",
        b"%1\r\n+k\r\n~2\r\n:1\r\n:2\r\n",
        b"|1\r\n+a\r\n+b\r\n>2\r\n+p\r\n$0\r\n\r\n",
        b"$10\r\n0123\r\n6789\r\n",
    ] {
        bytes.extend_from_slice(v);
    }
    let mut rng = Rng(7);
    for _ in 0..50 {
        bytes.extend_from_slice(&enc(&random_frame(&mut rng, 3)));
    }
    bytes
}

/// Decodes a stream delivered in chunks whose sizes come from `sizes`,
/// checking that `Ok(None)` never consumes bytes.
fn decode_chunked(
    input: &[u8],
    mut sizes: impl FnMut() -> usize,
    stateful: bool,
) -> (Vec<Vec<u8>>, usize) {
    let lim = Limits::default();
    let mut dec = Decoder::new(lim);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut fed = 0;
    loop {
        let before = buf.clone();
        let got = if stateful {
            dec.decode(&mut buf)
        } else {
            decode(&mut buf, &lim)
        };
        match got.expect("valid input") {
            Some(f) => frames.push(enc(&f)),
            None => {
                assert_eq!(buf, before, "Ok(None) touched the buffer");
                if fed == input.len() {
                    return (frames, buf.len());
                }
                let n = sizes().clamp(1, input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
        }
    }
}

#[test]
fn any_chunking_gives_the_same_frames() {
    let input = corpus();
    let (whole, left) = decode_chunked(&input, || usize::MAX, false);
    assert_eq!(left, 0);
    assert!(whole.len() > 60);
    for stateful in [false, true] {
        assert_eq!(decode_chunked(&input, || 1, stateful), (whole.clone(), 0));
        let mut rng = Rng(99);
        for round in 0..20 {
            let max = [2, 7, 30, 200][round % 4];
            let got = decode_chunked(&input, || 1 + rng.below(max), stateful);
            assert_eq!(got, (whole.clone(), 0), "round {round}");
        }
    }
}

#[test]
fn random_round_trip() {
    let mut rng = Rng(0x5eed);
    for i in 0..3000 {
        let frame = random_frame(&mut rng, 4);
        let bytes = enc(&frame);
        let mut buf = BytesMut::from(&bytes[..]);
        buf.extend_from_slice(b"+next\r\n");
        let got = decode(&mut buf, &Limits::default());
        assert_eq!(
            got,
            Ok(Some(frame)),
            "case {i}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(&buf[..], b"+next\r\n");
    }
}

#[test]
fn decoder_survives_a_huge_array_in_small_reads() {
    let n = 200_000;
    let mut input = BytesMut::new();
    encode_array_header(n, &mut input);
    for i in 0..n {
        encode_bulk(i.to_string().as_bytes(), &mut input);
    }
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let mut got = None;
    for chunk in input.chunks(4096) {
        buf.extend_from_slice(chunk);
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            got = Some(f);
        }
    }
    let Some(Frame::Array(items)) = got else {
        panic!("no array");
    };
    assert_eq!(items.len(), n);
    assert_eq!(items[n - 1], Frame::Bulk(Bytes::from((n - 1).to_string())));
    assert!(buf.is_empty());
}

#[test]
fn decoder_rescans_when_the_buffer_shrinks() {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::from(&b"*2\r\n:1\r\n"[..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    let mut other = BytesMut::from(&b":5\r\n"[..]);
    assert_eq!(dec.decode(&mut other), Ok(Some(Frame::Integer(5))));
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(1234);
    let valid = corpus();
    for i in 0..4000 {
        let data: Vec<u8> = if i % 2 == 0 {
            // Pure noise biased toward RESP-significant bytes.
            rng.pick(80, b"+-:$*_,#(!=%~>|\r\n0123456789-tf?x").to_vec()
        } else {
            // A slice of valid input with a few bytes flipped.
            rng.mutated(&valid, 120)
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
    fuzz_decode(b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n");
}
