//! Helpers shared by the PostgreSQL codec tests: framing a message body by
//! hand, independently of the encoders.

/// Frames a body: tag, Int32 length, body. Independent of the encoders.
pub(super) fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}
