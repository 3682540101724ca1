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

    /// The kept text, with a line marking the cut when there was one. The cut falls on
    /// character boundaries: the bytes of a character split by it count as cut.
    pub fn text(&self) -> String {
        if self.dropped == 0 {
            let mut bytes = self.head.clone();
            bytes.extend(self.tail.iter());
            return String::from_utf8_lossy(&bytes).into_owned();
        }
        let head = whole_characters_at_end(&self.head);
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let tail = whole_characters_at_start(&tail);
        let dropped = self.dropped + (self.head.len() - head.len() + self.tail.len() - tail.len()) as u64;
        format!("{}{}{}", String::from_utf8_lossy(head), cut_marker(dropped), String::from_utf8_lossy(tail))
    }
}

/// `bytes` without a character cut off at its end.
fn whole_characters_at_end(bytes: &[u8]) -> &[u8] {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => &bytes[..e.valid_up_to()],
        _ => bytes,
    }
}

/// `bytes` without the continuation bytes of a character cut off at its start.
fn whole_characters_at_start(bytes: &[u8]) -> &[u8] {
    let continuation = bytes.iter().take(3).take_while(|b| (**b & 0b1100_0000) == 0b1000_0000).count();
    &bytes[continuation..]
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
    fn a_cut_through_a_character_takes_the_whole_character() {
        let mut capture = HeadTail::new(6);
        capture.push("abé".as_bytes()); // the head keeps 3 bytes: a, b and é's first
        capture.push(b"xxxx");
        capture.push("éyz".as_bytes()); // the tail keeps 3 bytes: é's second, y and z
        assert_eq!(capture.text(), format!("ab{}yz", cut_marker(8)), "no replacement characters; the split bytes count as cut");
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
