//! The worker protocol's framing: one JSON message per `\n`-terminated line (a trailing `\r`
//! is dropped), never holding more than a limit. One scanner serves both readers: the engine's
//! (async, on a process's stdout) and [`WorkerResponder`](crate::responder::WorkerResponder)'s
//! (blocking, on stdin), so both ends frame lines alike.

use std::io::BufRead;

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line {
    /// A line (without its newline) is in the buffer.
    Complete,
    /// A line of this many bytes was longer than the limit and was skipped.
    TooLong(usize),
    /// The stream ended.
    Eof,
}

/// One line being assembled from the reader's buffers.
struct Scan<'a> {
    buf: &'a mut Vec<u8>,
    max: usize,
    skipped: usize,
}

impl<'a> Scan<'a> {
    fn new(buf: &'a mut Vec<u8>, max: usize) -> Self {
        buf.clear();
        Scan { buf, max, skipped: 0 }
    }

    /// Takes what `available` holds of the line; returns how many bytes it used and whether
    /// the line ended there.
    fn feed(&mut self, available: &[u8]) -> (usize, bool) {
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        if self.skipped > 0 || self.buf.len() + chunk.len() > self.max {
            self.skipped += self.buf.len() + chunk.len();
            self.buf.clear();
        } else {
            self.buf.extend_from_slice(chunk);
        }
        (found.unwrap_or(available.len()), found.is_some())
    }

    /// The line ended with a newline.
    fn ended(self) -> Line {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.skipped > 0 { Line::TooLong(self.skipped) } else { Line::Complete }
    }

    /// The stream ended.
    fn eof(self) -> Line {
        if self.skipped > 0 {
            Line::TooLong(self.skipped)
        } else if self.buf.is_empty() {
            Line::Eof
        } else {
            self.ended()
        }
    }
}

/// Reads one line into `buf` (cleared first), never holding more than `max` bytes: a longer
/// line is consumed and reported as [`Line::TooLong`].
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut scan = Scan::new(buf, max);
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(scan.eof());
        }
        let (used, ended) = scan.feed(available);
        reader.consume(used);
        if ended {
            return Ok(scan.ended());
        }
    }
}

/// [`read_line`] on a blocking reader.
pub(crate) fn read_line_blocking<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Line> {
    let mut scan = Scan::new(buf, max);
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(scan.eof());
        }
        let (used, ended) = scan.feed(available);
        reader.consume(used);
        if ended {
            return Ok(scan.ended());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const INPUT: &[u8] = b"short\nthis line is too long\r\nok\r\nlast without newline";

    #[tokio::test]
    async fn lines_are_bounded_and_the_reader_recovers_after_an_oversize_one() {
        // A tiny buffer makes lines span several reads.
        let mut reader = tokio::io::BufReader::with_capacity(4, INPUT);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"short");
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::TooLong(22));
        assert_eq!(read_line(&mut reader, &mut buf, 10).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"ok", "the carriage return is dropped");
        assert_eq!(read_line(&mut reader, &mut buf, 100).await.unwrap(), Line::Complete);
        assert_eq!(buf, b"last without newline");
        assert_eq!(read_line(&mut reader, &mut buf, 100).await.unwrap(), Line::Eof);
    }

    #[test]
    fn the_blocking_reader_frames_lines_the_same_way() {
        let mut reader = std::io::BufReader::with_capacity(4, INPUT);
        let mut buf = Vec::new();
        let mut seen = Vec::new();
        loop {
            match read_line_blocking(&mut reader, &mut buf, 10).unwrap() {
                Line::Eof => break,
                Line::TooLong(n) => seen.push(format!("too long: {n}")),
                Line::Complete => seen.push(String::from_utf8(buf.clone()).unwrap()),
            }
        }
        assert_eq!(seen, ["short", "too long: 22", "ok", "too long: 20"]);
    }
}
