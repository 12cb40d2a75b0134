//! Helpers shared by the RESP codec tests: static `Bytes` and a frame's
//! encoding as a `Vec`.

use super::*;

pub(super) fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

pub(super) fn enc(frame: &Frame) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_frame(frame, &mut out);
    out.to_vec()
}
