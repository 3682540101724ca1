//! Capped capture of a command's output: the head *and* the tail.
//!
//! A test suite prints its summary last; a build prints its error last. Keeping only the
//! first bytes of a long output would keep the noise and lose the verdict, silently. So a
//! capture keeps the first and the last half of its cap, counts what falls between, and
//! says so in the text where the cut is.

use std::collections::VecDeque;

/// Keeps the first `cap / 2` and the last `cap - cap / 2` bytes of a stream.
#[derive(Debug, Default)]
pub struct HeadTail {
    head_cap: usize,
    tail_cap: usize,
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl HeadTail {
    pub fn new(cap: usize) -> Self {
        HeadTail { head_cap: cap / 2, tail_cap: cap - cap / 2, ..HeadTail::default() }
    }

    pub fn push(&mut self, mut bytes: &[u8]) {
        let to_head = self.head_cap.saturating_sub(self.head.len()).min(bytes.len());
        self.head.extend_from_slice(&bytes[..to_head]);
        bytes = &bytes[to_head..];
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.tail_cap);
        self.tail.drain(..excess);
        self.dropped += excess as u64;
    }

    /// Bytes that fell between the head and the tail.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The kept text, with a line marking the cut when there was one.
    pub fn text(&self) -> String {
        let mut bytes = self.head.clone();
        if self.dropped > 0 {
            bytes.extend_from_slice(cut_marker(self.dropped).as_bytes());
        }
        bytes.extend(self.tail.iter());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// The line that stands where output was cut.
pub fn cut_marker(dropped: u64) -> String {
    format!("\n[... {dropped} bytes cut here: the output's first and last part are kept ...]\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_output_is_kept_whole() {
        let mut capture = HeadTail::new(10);
        capture.push(b"abc");
        capture.push(b"de");
        assert_eq!((capture.text(), capture.dropped()), ("abcde".to_string(), 0));
    }

    #[test]
    fn long_output_keeps_head_and_tail_and_says_how_much_was_cut() {
        let mut capture = HeadTail::new(6);
        for chunk in [&b"012"[..], b"3456789", b"ab", b"XYZ"] {
            capture.push(chunk);
        }
        assert_eq!(capture.dropped(), 15 - 6);
        assert_eq!(capture.text(), format!("012{}XYZ", cut_marker(9)));
    }
}
