//! The bounds every IMAP server's words must keep before the response
//! parser sees them: a framing layer on the connection's byte stream.
//!
//! async-imap hands its read buffer to imap-proto, whose nom parser recurses
//! once per nesting level (a BODYSTRUCTURE ~400 levels deep overflows a
//! tokio worker's stack and aborts the process), reserves the size a literal
//! announces before its bytes arrive, and re-parses a growing buffer on every
//! read. This layer sits under async-imap and scans the bytes once as they
//! arrive (RFC 3501 §4 / RFC 9051 §4: quoted strings, `{n}` literals,
//! parenthesised lists), and fails the read, which ends the session, when a
//! response passes one of the [`Limits`]:
//!
//! - parentheses nested deeper than `max_depth` (the parser never recurses
//!   past it, whatever the input);
//! - a line (outside literals) longer than `max_line` (the parser's
//!   re-reading of an unfinished line stays bounded);
//! - a literal announced larger than `max_literal`, or a response larger
//!   than `max_response`, refused at the announcement.
//!
//! A literal's bytes are held here, in a buffer that grows only as they
//! arrive, and handed on together with its announcement once complete, so
//! the parser never sees a promise it could reserve memory for.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The bounds of one connection's responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest parenthesised nesting.
    pub max_depth: u32,
    /// Longest line outside literals, in bytes.
    pub max_line: usize,
    /// Largest literal, in bytes.
    pub max_literal: u64,
    /// Largest response (lines and literals together), in bytes.
    pub max_response: u64,
}

impl Limits {
    /// Deepest nesting: a BODYSTRUCTURE of mail nested ten MIME levels deep
    /// uses about 25; the parser's stack use at this depth is measured in
    /// the tests on a debug build.
    pub const MAX_DEPTH: u32 = 48;
    /// Longest line: a SEARCH answer of ~35,000 UIDs. async-imap re-parses
    /// an unfinished line at each 4 KiB it reads, so the cost of a line is
    /// quadratic in its length; this bound keeps it to a few milliseconds.
    pub const MAX_LINE: usize = 256 * 1024;

    /// The limits for a watcher that fetches messages of at most `max_message` bytes.
    pub fn for_messages(max_message: usize) -> Limits {
        Limits {
            max_depth: Self::MAX_DEPTH,
            max_line: Self::MAX_LINE,
            max_literal: max_message as u64,
            max_response: (max_message + Self::MAX_LINE) as u64,
        }
    }
}

/// Which bound a server's response passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Overrun {
    /// Parentheses nested deeper than the limit.
    #[error("response nested deeper than {0} levels")]
    Depth(u32),
    /// A line ran past the limit without ending.
    #[error("response line longer than {0} bytes")]
    Line(usize),
    /// A literal announced larger than the limit.
    #[error("literal of {announced} bytes announced, more than {limit}")]
    Literal { announced: u64, limit: u64 },
    /// A response larger than the limit.
    #[error("response larger than {0} bytes")]
    Response(u64),
}

/// Where the scanner stands in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Atoms, numbers, lists, text.
    Text,
    /// Inside a quoted string.
    Quoted,
    /// After a backslash inside a quoted string.
    Escaped,
    /// Inside a literal, this many bytes to go.
    Literal(u64),
}

/// A literal announcement being read: `{` digits `}` at the end of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Brace {
    None,
    /// After `{`, the digits so far.
    Open(u64),
    /// After `}`: a literal of this size if the line ends here.
    Closed(u64),
}

/// The linear scanner: one pass over each byte, state kept between reads.
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    state: State,
    brace: Brace,
    depth: u32,
    line: usize,
    response: u64,
}

impl Scanner {
    pub fn new(limits: Limits) -> Scanner {
        Scanner {
            limits,
            state: State::Text,
            brace: Brace::None,
            depth: 0,
            line: 0,
            response: 0,
        }
    }

    /// Takes one byte; `Ok(true)` when the bytes so far may go to the
    /// parser (no literal announcement or literal is pending).
    pub fn push(&mut self, b: u8) -> Result<bool, Overrun> {
        self.response += 1;
        if self.response > self.limits.max_response {
            return Err(Overrun::Response(self.limits.max_response));
        }
        match self.state {
            State::Literal(left) => {
                let left = left - 1;
                if left == 0 {
                    self.state = State::Text;
                    return Ok(true);
                }
                self.state = State::Literal(left);
                return Ok(false);
            }
            State::Quoted | State::Escaped if b == b'\n' => {
                // No line end inside a quoted string (RFC 3501 §4.3): a
                // broken one ends with its line.
                self.state = State::Text;
            }
            State::Quoted => {
                self.state = match b {
                    b'\\' => State::Escaped,
                    b'"' => State::Text,
                    _ => State::Quoted,
                };
                return self.count_line();
            }
            State::Escaped => {
                self.state = State::Quoted;
                return self.count_line();
            }
            State::Text => {}
        }
        if b == b'\n' {
            self.line = 0;
            if let Brace::Closed(n) = self.brace {
                self.brace = Brace::None;
                if n > self.limits.max_literal {
                    return Err(Overrun::Literal {
                        announced: n,
                        limit: self.limits.max_literal,
                    });
                }
                if self.response + n > self.limits.max_response {
                    return Err(Overrun::Response(self.limits.max_response));
                }
                if n > 0 {
                    self.state = State::Literal(n);
                    return Ok(false);
                }
                return Ok(true);
            }
            // The response is complete.
            self.brace = Brace::None;
            self.depth = 0;
            self.response = 0;
            return Ok(true);
        }
        self.count_line()?;
        self.brace = match (self.brace, b) {
            (_, b'{') => Brace::Open(0),
            (Brace::Open(n), b'0'..=b'9') => match n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
            {
                Some(n) => Brace::Open(n),
                None => {
                    return Err(Overrun::Literal {
                        announced: u64::MAX,
                        limit: self.limits.max_literal,
                    })
                }
            },
            // `{n+}` (RFC 7888) is the client's, but costs nothing to accept.
            (Brace::Open(n), b'+') => Brace::Open(n),
            (Brace::Open(n), b'}') => Brace::Closed(n),
            (Brace::Closed(n), b'\r') => Brace::Closed(n),
            _ => Brace::None,
        };
        match b {
            b'"' => self.state = State::Quoted,
            b'(' => {
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(Overrun::Depth(self.limits.max_depth));
                }
            }
            b')' => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok(self.brace == Brace::None)
    }

    fn count_line(&mut self) -> Result<bool, Overrun> {
        self.line += 1;
        if self.line > self.limits.max_line {
            return Err(Overrun::Line(self.limits.max_line));
        }
        Ok(self.brace == Brace::None)
    }
}

/// An IMAP connection whose incoming bytes pass the [`Scanner`] before
/// anyone reads them; writes go straight through.
pub struct Framed<S> {
    inner: S,
    scanner: Scanner,
    /// Scanned bytes not yet read; `held[start..ready]` may be read.
    held: Vec<u8>,
    start: usize,
    ready: usize,
    failed: Option<Overrun>,
    eof: bool,
}

impl<S> std::fmt::Debug for Framed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framed")
            .field("held", &(self.held.len() - self.start))
            .field("failed", &self.failed)
            .finish()
    }
}

impl<S> Framed<S> {
    pub fn new(inner: S, limits: Limits) -> Framed<S> {
        Framed {
            inner,
            scanner: Scanner::new(limits),
            held: Vec::new(),
            start: 0,
            ready: 0,
            failed: None,
            eof: false,
        }
    }

    /// The connection, for a STARTTLS upgrade. Bytes the server sent
    /// ahead of the handshake are dropped (RFC 3207 §4.2 / RFC 2595 §3.1:
    /// nothing from before TLS may be acted on after it).
    pub fn into_inner(self) -> S {
        self.inner
    }

    fn scan(&mut self, new: &[u8]) -> Result<(), Overrun> {
        for &b in new {
            self.held.push(b);
            if self.scanner.push(b)? {
                self.ready = self.held.len();
            }
        }
        Ok(())
    }
}

fn overrun(o: Overrun) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, o)
}

impl<S: AsyncRead + Unpin> AsyncRead for Framed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > this.start {
                let n = (this.ready - this.start).min(buf.remaining());
                buf.put_slice(&this.held[this.start..this.start + n]);
                this.start += n;
                // Keep the buffer from growing with what was read. Once
                // everything is read it is released: an idle connection
                // holds none, and one large fetch does not leave its size
                // behind for the life of the connection.
                if this.start == this.held.len() {
                    this.held = Vec::new();
                    this.start = 0;
                    this.ready = 0;
                } else if this.start > this.held.len() / 2 {
                    this.held.drain(..this.start);
                    this.ready -= this.start;
                    this.start = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if let Some(o) = this.failed {
                return Poll::Ready(Err(overrun(o)));
            }
            if this.eof {
                // An unfinished response: the parser reports the close.
                this.ready = this.held.len();
                if this.ready > this.start {
                    continue;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            if rb.filled().is_empty() {
                this.eof = true;
                continue;
            }
            if let Err(o) = this.scan(rb.filled()) {
                this.failed = Some(o);
                this.held = Vec::new();
                this.start = 0;
                this.ready = 0;
                return Poll::Ready(Err(overrun(o)));
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Framed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The [`Overrun`] inside an I/O error, if that is what it is.
pub fn overrun_in(e: &std::io::Error) -> Option<Overrun> {
    e.get_ref()?.downcast_ref::<Overrun>().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_depth: 8,
            max_line: 100,
            max_literal: 50,
            max_response: 200,
        }
    }

    fn scan(input: &[u8]) -> Result<usize, Overrun> {
        let mut s = Scanner::new(limits());
        let mut ready = 0;
        for (i, &b) in input.iter().enumerate() {
            if s.push(b)? {
                ready = i + 1;
            }
        }
        Ok(ready)
    }

    #[test]
    fn well_formed_responses_pass() {
        let r = b"* 1 FETCH (UID 7 BODY[] {5}\r\nab)(c UID 8)\r\n";
        assert_eq!(scan(r), Ok(r.len()));
        // Parentheses inside quoted strings and literals do not count.
        let r = b"* 1 FETCH (ENVELOPE (\"(((((((((((\" NIL))\r\n";
        assert_eq!(scan(r), Ok(r.len()));
        let r = b"* 1 FETCH (BODY[] {12}\r\n((((((((((((\r\n";
        assert_eq!(scan(r), Ok(r.len()));
    }

    #[test]
    fn a_literal_is_held_until_its_bytes_arrived() {
        let r = b"* 1 FETCH (BODY[] {10}\r\n12345";
        // Everything before the `{` may go; the announcement waits.
        assert_eq!(scan(r), Ok(b"* 1 FETCH (BODY[] ".len()));
    }

    #[tokio::test]
    async fn a_connection_read_to_the_end_holds_no_buffer() {
        use tokio::io::AsyncReadExt;
        let literal = "x".repeat(100_000);
        let wire = format!("* 1 FETCH (BODY[] {{{}}}\r\n{literal})\r\n", literal.len());
        let mut framed = Framed::new(wire.as_bytes(), Limits::for_messages(1 << 20));
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while got.len() < wire.len() {
            let n = framed.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, wire.as_bytes());
        // The 100 KB literal was held until complete; nothing stays behind.
        assert_eq!(framed.held.capacity(), 0);
    }

    #[test]
    fn each_bound_is_enforced() {
        let deep = format!("* 1 FETCH {}\r\n", "(".repeat(9));
        assert_eq!(scan(deep.as_bytes()), Err(Overrun::Depth(8)));
        // Depth is per response, not per connection.
        let ok = format!("* 1 FETCH {}\r\n", "(".repeat(8)).repeat(3);
        assert!(scan(ok.as_bytes()).is_ok());
        assert_eq!(scan(&[b'a'; 101]), Err(Overrun::Line(100)));
        assert_eq!(
            scan(b"* 1 FETCH (BODY[] {51}\r\n"),
            Err(Overrun::Literal {
                announced: 51,
                limit: 50
            })
        );
        assert!(matches!(
            scan(b"* 1 FETCH (BODY[] {99999999999999999999999}\r\n"),
            Err(Overrun::Literal { .. })
        ));
        let many = b"* 1 FETCH (BODY[] {50}\r\n"
            .iter()
            .chain([b'x'; 50].iter());
        let many: Vec<u8> = many
            .chain(b" BODY[1] {50}\r\n".iter())
            .chain([b'x'; 50].iter())
            .chain(b" BODY[2] {50}\r\n".iter())
            .copied()
            .collect();
        assert_eq!(scan(&many), Err(Overrun::Response(200)));
    }
}
