//! Fuzzes the PostgreSQL backend-message decoder: whole-buffer decoding
//! loops until `None` or an error, every split of the input gives the same
//! messages and the same error, `Ok(None)` never consumes bytes, and every
//! decoded message survives an `encode_backend`/`decode` round trip. The
//! checks live in `iokernel::codec::pg::fuzz_decode` so that `cargo test`
//! runs them on stable too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    iokernel::codec::pg::fuzz_decode(data);
});
