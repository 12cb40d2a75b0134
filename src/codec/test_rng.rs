//! Test-only helpers shared by the codec tests: a small deterministic PRNG
//! (xorshift64*, so the tests need no dependency) and the "valid input with a
//! few bytes flipped" generator both decoders' garbage tests use.

use bytes::Bytes;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max` bytes drawn from `alphabet`.
    pub fn pick(&mut self, max: usize, alphabet: &[u8]) -> Bytes {
        let n = self.below(max + 1);
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len())])
            .collect()
    }

    /// A slice of `valid` (at most `max_len` bytes) with up to three bytes flipped.
    pub fn mutated(&mut self, valid: &[u8], max_len: usize) -> Vec<u8> {
        let start = self.below(valid.len());
        let len = self.below(max_len).min(valid.len() - start);
        let mut d = valid[start..start + len].to_vec();
        for _ in 0..self.below(4) {
            if !d.is_empty() {
                let at = self.below(d.len());
                d[at] = self.next() as u8;
            }
        }
        d
    }
}
