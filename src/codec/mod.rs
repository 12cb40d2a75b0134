//! Sans-IO codecs: pure functions from bytes to frames and from requests to
//! bytes. Nothing here does I/O, spawns tasks or touches Python. Incomplete
//! input is `Ok(None)`; every length read off the wire is checked against a
//! limit before anything is allocated for it.

pub mod pg;
pub mod pg_auth;
pub mod pg_text;
pub mod resp;

#[cfg(test)]
mod test_rng;

/// Where the decoders' fuzz bodies (`pg::fuzz_decode`, `resp::fuzz_decode`)
/// cut their input to feed it in two parts: everywhere for short input, else
/// a few fixed and a few input-dependent places.
fn fuzz_split_points(data: &[u8]) -> Vec<usize> {
    let n = data.len();
    if n <= 16 {
        return (0..n).collect();
    }
    let h = data
        .iter()
        .fold(n, |h, &b| h.wrapping_mul(31) ^ usize::from(b));
    vec![1, n / 3, n / 2, n - 1, h % n, (h >> 16) % n]
}
