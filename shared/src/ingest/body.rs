//! Request bodies under ingest's limits: read chunk by chunk into a buffer whose every byte is reserved from the
//! [`MemoryBudget`] first, refused past the body cap (at once when `Content-Length` says so), and decoded into a
//! buffer that is reserved the same way. An envelope's first line can be read before the rest
//! ([`BodyReader::first_line`]) so that a key given only in its `dsn` header is checked before the body is.

use axum::body::Body;
use bytes::Bytes;
use http::HeaderMap;
use http_body_util::BodyExt;

use super::budget::{MemoryBudget, OverBudget, Reservation};
use super::BadStoreRequest;
use crate::protocol::decode::{decode_body_within, is_compressed, FirstLine, Line, OutputBudget};
use crate::protocol::{DecodeError, EnvelopeError};

/// The most an envelope's header line may inflate to: a DSN, an event id, `sent_at`, a trace context.
pub(crate) const MAX_HEADER_LINE_BYTES: usize = 16 << 10;
/// The raw bytes that may carry that line (a gzip header's optional fields can hold any number of bytes).
const MAX_HEADER_RAW_BYTES: usize = 2 * MAX_HEADER_LINE_BYTES;
/// The first buffer when the body's length is not declared; it doubles from there.
const FIRST_BUFFER_BYTES: usize = 16 << 10;

pub(crate) struct BodyReader<'a> {
    body: &'a mut Body,
    limit: usize,
    declared: Option<usize>,
    buf: Vec<u8>,
    reservation: Reservation,
    ended: bool,
}

impl<'a> BodyReader<'a> {
    /// Refuses a declared `Content-Length` over `limit` before a byte is read. Nothing is reserved until
    /// bytes arrive, so a client that declares a large body and stalls holds no budget.
    pub fn new(
        body: &'a mut Body,
        headers: &HeaderMap,
        limit: usize,
        budget: &MemoryBudget,
    ) -> Result<Self, BadStoreRequest> {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if declared.is_some_and(|n| n > limit) {
            return Err(BadStoreRequest::BodyTooLarge(limit));
        }
        Ok(Self {
            body,
            limit,
            declared,
            buf: Vec::new(),
            reservation: budget.reservation(),
            ended: false,
        })
    }

    /// Reads one more chunk; `false` once the body has ended.
    async fn next(&mut self) -> Result<bool, BadStoreRequest> {
        while !self.ended {
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => return Err(BadStoreRequest::BodyRead(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.append(&data)?;
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Copies a chunk in, growing the buffer after reserving the new buffer and the old one it is copied from.
    /// The buffer doubles up to the declared length, never straight to it: a client that declares 20 MiB and
    /// sends a byte holds 16 KiB.
    fn append(&mut self, data: &[u8]) -> Result<(), BadStoreRequest> {
        let needed = self.buf.len() + data.len();
        if needed > self.limit {
            return Err(BadStoreRequest::BodyTooLarge(self.limit));
        }
        if needed > self.buf.capacity() {
            let old = self.buf.capacity();
            let most = self.declared.filter(|d| *d >= needed).unwrap_or(self.limit);
            let size = needed.max(old * 2).max(FIRST_BUFFER_BYTES).min(most);
            self.reservation.ensure(old + size)?;
            self.buf.reserve_exact(size - self.buf.len());
            self.reservation.release(old);
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Reads until the first line of the (decoded) body is complete, under [`MAX_HEADER_LINE_BYTES`].
    pub async fn first_line(&mut self, encoding: Option<&str>) -> Result<Vec<u8>, BadStoreRequest> {
        let mut line = FirstLine::new(encoding, MAX_HEADER_LINE_BYTES)?;
        loop {
            let more = self.next().await?;
            match line.feed(&self.buf, !more) {
                Ok(Line::Complete(line)) => return Ok(line),
                Ok(Line::Partial) if self.buf.len() <= MAX_HEADER_RAW_BYTES => {}
                Ok(Line::Partial) | Err(DecodeError::TooLarge(_)) => {
                    return Err(BadStoreRequest::Envelope(EnvelopeError::InvalidHeader(
                        format!(
                            "the envelope header must end within {MAX_HEADER_LINE_BYTES} bytes"
                        ),
                    )))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The whole body and what it holds of the budget.
    pub async fn finish(mut self) -> Result<(Bytes, Reservation), BadStoreRequest> {
        while self.next().await? {}
        Ok((Bytes::from(self.buf), self.reservation))
    }
}

/// What is left of a refused request's body that is still read (and dropped): a client that is still sending
/// when we answer early reads our answer instead of a connection reset (closing a socket with unread data
/// resets it). Larger bodies are left unread and the connection closed.
const DISCARD_BYTES: usize = 1 << 20;

/// Answers a refusal after discarding what is left of a small body. A client that waits for `100 Continue`
/// before sending its body is answered at once: reading would ask it for the body.
pub(crate) async fn refuse(
    headers: &HeaderMap,
    body: &mut Body,
    why: BadStoreRequest,
) -> axum::response::Response {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut left = if expects_continue { 0 } else { DISCARD_BYTES };
    while left > 0 {
        let Some(Ok(frame)) = body.frame().await else {
            break;
        };
        let read = frame.into_data().map_or(0, |data| data.len());
        left = left.saturating_sub(read.max(1));
    }
    axum::response::IntoResponse::into_response(why)
}

/// Decodes `raw` per `Content-Encoding`, reserving the output before it is allocated; the raw body's share of
/// the reservation is given back when it was compressed (the decoded body replaces it).
pub(crate) fn decode_within(
    encoding: Option<&str>,
    raw: Bytes,
    limit: usize,
    reservation: &mut Reservation,
) -> Result<Bytes, BadStoreRequest> {
    let raw_held = reservation.bytes();
    let mut output = Output {
        reservation,
        refused: None,
    };
    let decoded = match decode_body_within(encoding, raw, limit, &mut output) {
        Err(DecodeError::Refused) => {
            return Err(output.refused.map_or(BadStoreRequest::Busy, Into::into))
        }
        other => other?,
    };
    if is_compressed(encoding) {
        output.reservation.release(raw_held);
    }
    Ok(decoded)
}

/// The decoder's view of a request's reservation, keeping why it refused.
struct Output<'a> {
    reservation: &'a mut Reservation,
    refused: Option<OverBudget>,
}

impl OutputBudget for Output<'_> {
    fn reserve(&mut self, bytes: usize) -> bool {
        self.reservation
            .grow(bytes)
            .map_err(|why| self.refused = Some(why))
            .is_ok()
    }

    fn release(&mut self, bytes: usize) {
        self.reservation.release(bytes);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{stream, StreamExt};

    use super::*;

    /// A body of `chunks`, then an error: reading past them is a failure the test can see.
    fn body_then_error(chunks: &[&'static [u8]]) -> Body {
        let chunks: Vec<Result<Bytes, std::io::Error>> =
            chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Body::from_stream(stream::iter(chunks).chain(stream::once(async {
            Err(std::io::Error::other("read past what was needed"))
        })))
    }

    #[tokio::test]
    async fn the_first_line_is_read_without_the_rest() {
        let budget = MemoryBudget::new(1 << 20);
        let mut body = body_then_error(&[b"{\"dsn\":", b"\"x\"}\n{\"type\""]);
        let mut reader = BodyReader::new(&mut body, &HeaderMap::new(), 1 << 20, &budget).unwrap();
        assert_eq!(reader.first_line(None).await.unwrap(), b"{\"dsn\":\"x\"}");
        assert!(matches!(
            reader.finish().await,
            Err(BadStoreRequest::BodyRead(_))
        ));
        // No newline within the cap: refused once the cap is passed, whatever follows.
        let mut body = Body::from(vec![b'{'; MAX_HEADER_RAW_BYTES * 4]);
        let mut reader = BodyReader::new(&mut body, &HeaderMap::new(), 1 << 20, &budget).unwrap();
        assert!(matches!(
            reader.first_line(None).await,
            Err(BadStoreRequest::Envelope(EnvelopeError::InvalidHeader(_)))
        ));
    }

    #[tokio::test]
    async fn bodies_hold_the_budget_while_they_live() {
        let budget = MemoryBudget::new(1 << 20);
        let read = |size: usize| {
            let budget = budget.clone();
            async move {
                let mut body = Body::from(vec![b'x'; size]);
                BodyReader::new(&mut body, &HeaderMap::new(), 1 << 20, &budget)?
                    .finish()
                    .await
            }
        };
        let (bytes, held) = read(300 << 10).await.unwrap();
        assert_eq!((bytes.len(), held.bytes()), (300 << 10, 300 << 10));
        assert_eq!(budget.in_use(), 300 << 10);
        assert!(matches!(read(800 << 10).await, Err(BadStoreRequest::Busy)));
        drop((bytes, held));
        assert_eq!(budget.in_use(), 0);
        assert!(read(800 << 10).await.is_ok());
        // A declared length over the cap is refused before a byte is read.
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_LENGTH, (2 << 20).into());
        let mut body = body_then_error(&[]);
        assert!(matches!(
            BodyReader::new(&mut body, &headers, 1 << 20, &budget),
            Err(BadStoreRequest::BodyTooLarge(_))
        ));
    }
}
