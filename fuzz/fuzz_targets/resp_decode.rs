//! Fuzzes the RESP decoder: whole-buffer decoding loops until `None` or an
//! error, every split of the input gives the same frames, `Ok(None)` never
//! consumes bytes, and every decoded frame survives an encode/decode round
//! trip. The checks live in `iokernel::codec::resp::fuzz_decode` so that
//! `cargo test` runs them on stable too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iokernel::codec::resp::fuzz_decode(data);
});
