//! Random-ish bytes for record values and for the disk probe's blocks, from a
//! small xorshift generator (no cryptographic quality needed, only bytes that a
//! compressor or a deduplicating disk cannot shrink to nothing).

use std::time::{SystemTime, UNIX_EPOCH};

/// xorshift64* pseudo-random generator.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (0 is replaced, xorshift must not start at 0).
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// A generator seeded from the clock and the process id.
    pub fn from_clock() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Rng::new(nanos ^ (u64::from(std::process::id()) << 32))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Fills `buf` with uniformly random bytes (incompressible).
    pub fn fill_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let word = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
}

/// A pool of random upper-case letters that record values are sliced from, like
/// Kafka's own producer performance tool: every value differs, and compression
/// codecs get realistic (partial) gains rather than all or nothing.
pub struct Payloads {
    pool: Vec<u8>,
    size: usize,
}

impl Payloads {
    /// A pool for values of exactly `size` bytes.
    pub fn new(size: usize, rng: &mut Rng) -> Self {
        let len = size + (1 << 20).max(size);
        let mut pool = Vec::with_capacity(len);
        while pool.len() < len {
            let word = rng.next_u64();
            for byte in word.to_le_bytes() {
                // 26 letters, slight modulo bias is irrelevant here.
                pool.push(b'A' + byte % 26);
            }
        }
        pool.truncate(len);
        Payloads { pool, size }
    }

    /// The value for record `index`: `size` bytes at an offset that moves with the index.
    pub fn get(&self, index: u64) -> &[u8] {
        let starts = (self.pool.len() - self.size + 1) as u64;
        // A large odd stride walks every start offset before repeating.
        let start = (index.wrapping_mul(7_919) % starts) as usize;
        &self.pool[start..start + self.size]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_exact_size_and_vary() {
        let mut rng = Rng::new(7);
        for size in [0, 1, 100, 1024, 3 << 20] {
            let payloads = Payloads::new(size, &mut rng);
            assert_eq!(payloads.get(0).len(), size);
            assert_eq!(payloads.get(123_456).len(), size);
            if size >= 100 {
                assert_ne!(payloads.get(0), payloads.get(1));
            }
        }
    }
}
