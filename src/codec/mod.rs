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
