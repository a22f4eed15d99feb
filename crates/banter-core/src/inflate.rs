//! Reading a compressed archive entry without trusting its headers: the bytes inflated are counted as they
//! come, against a cap and against a ratio to the compressed bytes really in the archive, so a zip bomb stops
//! within one chunk of either limit, in bounded memory. Used for WhatsApp `.zip` exports and `torch.save`
//! checkpoints.

use std::io::Read;

/// Why reading stopped short.
#[derive(Debug)]
pub enum Inflate {
    /// The reader failed.
    Io(std::io::Error),
    /// More than the cap came out.
    OverCap,
    /// More than `max_ratio` × the compressed bytes came out (the bytes read so far).
    OverRatio(u64),
}

/// The limits of one entry.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The most bytes to accept; one more is [`Inflate::OverCap`].
    pub cap: u64,
    /// The compressed bytes really available (at least 1).
    pub packed: u64,
    /// The largest inflated/compressed ratio, checked from `ratio_from` bytes on (`u64::MAX`: none).
    pub max_ratio: u64,
    /// Inflated size from which the ratio is checked (small entries compress well and harmlessly).
    pub ratio_from: u64,
}

/// The compressed bytes an entry can really have: what its header declares, but never more than lies
/// between its data and the end of the archive (headers can lie); at least 1.
pub fn packed_bytes(declared: u64, data_start: u64, archive_len: u64) -> u64 {
    declared.min(archive_len.saturating_sub(data_start)).max(1)
}

/// Reads `r` to its end within `b`, in 64 KiB steps.
pub fn read_bounded(mut r: impl Read, b: Bounds) -> Result<Vec<u8>, Inflate> {
    let packed = b.packed.max(1);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Inflate::Io(e)),
        };
        out.extend_from_slice(&chunk[..n]);
        let got = out.len() as u64;
        if got > b.cap {
            return Err(Inflate::OverCap);
        }
        if got > b.ratio_from && got / packed > b.max_ratio {
            return Err(Inflate::OverRatio(got));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_and_the_ratio_hold_on_the_bytes_that_come() {
        let zeros = std::io::repeat(0).take(10 << 20);
        let b = Bounds { cap: 1 << 20, packed: 1 << 30, max_ratio: u64::MAX, ratio_from: 0 };
        assert!(matches!(read_bounded(zeros, b), Err(Inflate::OverCap)));
        let zeros = std::io::repeat(0).take(10 << 20);
        let b = Bounds { cap: u64::MAX, packed: 1000, max_ratio: 200, ratio_from: 1 << 20 };
        match read_bounded(zeros, b) {
            Err(Inflate::OverRatio(got)) => assert!(got <= (1 << 20) + (64 << 10)),
            other => panic!("{other:?}"),
        }
        let b = Bounds { cap: 100, packed: 1, max_ratio: 200, ratio_from: 1 << 20 };
        assert_eq!(read_bounded(&b"hello"[..], b).unwrap(), b"hello");
    }
}
