//! One budget for everything decoded from one user-data document: gzip payloads, MIME parts,
//! `#include` answers, archive items, and the `b64`/`gz+b64` contents of its `write_files`.
//! A few KB of gzip or nested MIME can otherwise grow to gigabytes and abort the process
//! before anything is applied or reported. Every decoder draws from the budget while it
//! decodes, and never allocates past what is left.

use std::cell::Cell;
use std::io::Read;

use base64::Engine;

/// Bytes that decoding one document may produce in all. cloud-init has no such limit, but
/// MAAS user-data is small: this leaves room for a 16 MiB document unpacked a few times over.
pub const MAX_DECODED_BYTES: u64 = 64 * 1024 * 1024;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("decoding it would pass the {total}-byte limit on all decoded user-data")]
    OverBudget { total: u64 },
    #[error("gzip data expands beyond the {limit}-byte limit")]
    TooLarge { limit: u64 },
    #[error("invalid gzip data: {0}")]
    Gzip(String),
    #[error("invalid base64: {0}")]
    Base64(String),
    #[error("unknown encoding {0:?}")]
    UnknownEncoding(String),
}

/// What is left of the bytes a document may decode to. Shared by reference by every decoder of
/// the document (single-threaded: decoding is).
#[derive(Debug)]
pub struct Budget {
    total: u64,
    left: Cell<u64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(MAX_DECODED_BYTES)
    }
}

impl Budget {
    pub fn new(total: u64) -> Budget {
        Budget {
            total,
            left: Cell::new(total),
        }
    }

    /// A budget of `left` bytes of a `total` (what an earlier decoding left).
    pub fn with_left(total: u64, left: u64) -> Budget {
        Budget {
            total,
            left: Cell::new(left.min(total)),
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn left(&self) -> u64 {
        self.left.get()
    }

    /// Takes `n` bytes, or nothing when fewer are left.
    pub fn take(&self, n: usize) -> Result<(), DecodeError> {
        let n = n as u64;
        match self.left.get().checked_sub(n) {
            Some(rest) => {
                self.left.set(rest);
                Ok(())
            }
            None => Err(self.exceeded()),
        }
    }

    fn give_back(&self, n: usize) {
        self.left
            .set(self.left.get().saturating_add(n as u64).min(self.total));
    }

    /// The error of a budget that has no room left.
    pub fn exceeded(&self) -> DecodeError {
        DecodeError::OverBudget { total: self.total }
    }

    /// Decompresses gzip `data`, at most `limit` bytes of it (and at most what is left). A
    /// stream that is cut short, or that would pass either limit, is an error: never a
    /// silently truncated result.
    pub fn gunzip(&self, data: &[u8], limit: u64) -> Result<Vec<u8>, DecodeError> {
        let cap = limit.min(self.left());
        match read_capped(flate2::read::GzDecoder::new(data), cap) {
            Ok(out) => {
                self.take(out.len())?;
                Ok(out)
            }
            Err(Capped::Over) if cap < limit => Err(self.exceeded()),
            Err(Capped::Over) => Err(DecodeError::TooLarge { limit }),
            Err(Capped::Io(e)) => Err(DecodeError::Gzip(e.to_string())),
        }
    }

    /// Decodes base64, whitespace (line breaks) ignored.
    pub fn base64(&self, data: &[u8]) -> Result<Vec<u8>, DecodeError> {
        // The decoded size is known before decoding: take it first, return what was not used.
        let clean_len = data.iter().filter(|b| !b.is_ascii_whitespace()).count();
        let estimate = clean_len / 4 * 3 + 3;
        self.take(estimate)?;
        let clean: Vec<u8> = data
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(&clean)
            .map_err(|e| DecodeError::Base64(e.to_string()));
        let used = decoded.as_ref().map_or(0, Vec::len);
        self.give_back(estimate - used.min(estimate));
        decoded
    }
}

enum Capped {
    Over,
    Io(std::io::Error),
}

/// Reads `r` to its end if it holds at most `cap` bytes; the buffer never grows past `cap`.
fn read_capped(mut r: impl Read, cap: u64) -> Result<Vec<u8>, Capped> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Capped::Io(e)),
        };
        let want = out.len() + n;
        if want > cap {
            return Err(Capped::Over);
        }
        if want > out.capacity() {
            // Double as Vec would, but never past the cap.
            let target = (out.capacity() * 2).max(want).min(cap);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_draws_from_the_budget_and_refuses_past_it() {
        let b = Budget::new(1000);
        assert_eq!(b.gunzip(&gz(&[b'a'; 600]), 10_000).unwrap().len(), 600);
        assert_eq!(b.left(), 400);
        assert_eq!(
            b.gunzip(&gz(&[b'a'; 600]), 10_000),
            Err(DecodeError::OverBudget { total: 1000 })
        );
        // What failed took nothing.
        assert_eq!(b.left(), 400);
        assert_eq!(
            b.gunzip(&gz(&[b'a'; 300]), 200),
            Err(DecodeError::TooLarge { limit: 200 })
        );
    }

    #[test]
    fn a_cut_gzip_stream_is_an_error() {
        let data = gz(b"#cloud-config\nhostname: a-rather-long-name-for-a-host\n");
        let cut = &data[..data.len() - 6];
        assert!(matches!(
            Budget::default().gunzip(cut, 1 << 20),
            Err(DecodeError::Gzip(_))
        ));
    }

    #[test]
    fn the_buffer_never_grows_past_the_cap() {
        let out = read_capped(&[7u8; 100_000][..], 100_000).ok().unwrap();
        assert_eq!(out.len(), 100_000);
        assert!(out.capacity() <= 100_000);
        assert!(matches!(
            read_capped(&[7u8; 100_001][..], 100_000),
            Err(Capped::Over)
        ));
    }

    #[test]
    fn base64_takes_what_it_decodes() {
        let b = Budget::new(100);
        assert_eq!(b.base64(b"aGVs\nbG8=").unwrap(), b"hello");
        assert_eq!(b.left(), 95);
        assert!(matches!(b.base64(b"!!!!"), Err(DecodeError::Base64(_))));
        assert_eq!(b.left(), 95);
        let long = "QUFB".repeat(40);
        assert_eq!(
            b.base64(long.as_bytes()),
            Err(DecodeError::OverBudget { total: 100 })
        );
    }
}
