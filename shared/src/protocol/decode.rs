//! `Content-Encoding` as Relay accepts it: gzip, deflate (zlib-wrapped, raw as a fallback), br and zstd.
//! Decompression streams into a buffer that may never exceed the limit, so a bomb costs at most `limit` bytes,
//! and asks its caller before each growth of that buffer (the ingest memory budget). [`FirstLine`] inflates
//! only a body's first line, as its bytes arrive, under a small cap: enough to read an envelope's header.

use std::io::{Read, Write};

use bytes::Bytes;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("unsupported content encoding {0:?}")]
    Unsupported(String),
    #[error("stacked content encodings are not supported ({0:?})")]
    Stacked(String),
    #[error("body exceeds {0} bytes once decompressed")]
    TooLarge(usize),
    #[error("body is not valid {0}: {1}")]
    Corrupt(&'static str, String),
    /// The caller refused to let the output grow (its memory budget); it knows why.
    #[error("decompression stopped by the memory budget")]
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

fn parse_encoding(header: Option<&str>) -> Result<Encoding, DecodeError> {
    let Some(header) = header else {
        return Ok(Encoding::Identity);
    };
    let codings: Vec<&str> = header
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"))
        .collect();
    match codings.as_slice() {
        [] => Ok(Encoding::Identity),
        [one] => match one.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Ok(Encoding::Gzip),
            "deflate" => Ok(Encoding::Deflate),
            "br" => Ok(Encoding::Brotli),
            "zstd" => Ok(Encoding::Zstd),
            _ => Err(DecodeError::Unsupported(one.chars().take(32).collect())),
        },
        _ => Err(DecodeError::Stacked(header.chars().take(64).collect())),
    }
}

/// Decodes `body` per the `Content-Encoding` header, refusing to produce more than `limit` bytes.
pub fn decode_body(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, DecodeError> {
    decode_body_within(content_encoding, body, limit, &mut Unbounded)
}

/// Whether the header names a compression (work and memory proportional to the output, not the body).
pub fn is_compressed(content_encoding: Option<&str>) -> bool {
    !matches!(parse_encoding(content_encoding), Ok(Encoding::Identity))
}

/// What the decoded output may hold: asked before each buffer is allocated, told when an old one is freed.
pub trait OutputBudget {
    /// `false` refuses the allocation, which stops decoding with [`DecodeError::Refused`].
    fn reserve(&mut self, bytes: usize) -> bool;
    fn release(&mut self, bytes: usize);
}

/// No budget beyond the limit.
struct Unbounded;

impl OutputBudget for Unbounded {
    fn reserve(&mut self, _: usize) -> bool {
        true
    }
    fn release(&mut self, _: usize) {}
}

/// [`decode_body`] within a budget. The identity encoding allocates nothing and never asks.
pub fn decode_body_within(
    content_encoding: Option<&str>,
    body: Bytes,
    limit: usize,
    budget: &mut dyn OutputBudget,
) -> Result<Bytes, DecodeError> {
    // The `bufread` decoders read the body in place: the `read` ones copy it through a 32 KiB buffer they
    // allocate and zero for every request.
    let out = match parse_encoding(content_encoding)? {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge(limit));
            }
            return Ok(body);
        }
        Encoding::Gzip => read_capped(
            flate2::bufread::MultiGzDecoder::new(&body[..]),
            limit,
            "gzip",
            body.len(),
            budget,
        )?,
        Encoding::Deflate => match read_capped(
            flate2::bufread::ZlibDecoder::new(&body[..]),
            limit,
            "deflate",
            body.len(),
            budget,
        ) {
            // Some clients send raw deflate under this name; accept it as browsers do.
            Err(DecodeError::Corrupt(..)) => read_capped(
                flate2::bufread::DeflateDecoder::new(&body[..]),
                limit,
                "deflate",
                body.len(),
                budget,
            )?,
            other => other?,
        },
        Encoding::Brotli => read_capped(
            brotli::Decompressor::new(&body[..], 4096),
            limit,
            "br",
            body.len(),
            budget,
        )?,
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| DecodeError::Corrupt("zstd", e.to_string()))?;
            read_capped(decoder, limit, "zstd", body.len(), budget)?
        }
    };
    Ok(Bytes::from(out))
}

/// Inflates zlib data (the legacy store endpoint's base64+zlib bodies) with the same cap.
pub fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    read_capped(
        flate2::bufread::ZlibDecoder::new(data),
        limit,
        "zlib",
        data.len(),
        &mut Unbounded,
    )
}

/// Reads all of `reader` into a buffer of at most `limit + 1` bytes (one more tells "too large"), doubling it
/// as it fills. Each new buffer is reserved before it is allocated and the old one released once copied out of:
/// the budget sees both while both exist.
fn read_capped(
    mut reader: impl Read,
    limit: usize,
    name: &'static str,
    compressed_len: usize,
    budget: &mut dyn OutputBudget,
) -> Result<Vec<u8>, DecodeError> {
    let cap = limit.saturating_add(1);
    // JSON compresses about 4:1; starting there saves most regrowth copies without trusting the input.
    let mut next = compressed_len.saturating_mul(4).clamp(4096, cap.max(4096));
    let (mut out, mut filled) = (Vec::new(), 0);
    let outcome = loop {
        if filled == out.len() {
            if out.len() >= cap {
                break Err(DecodeError::TooLarge(limit));
            }
            let size = next.min(cap);
            if !budget.reserve(size) {
                break Err(DecodeError::Refused);
            }
            let mut bigger = Vec::with_capacity(size);
            bigger.extend_from_slice(&out[..filled]);
            bigger.resize(size, 0);
            budget.release(std::mem::replace(&mut out, bigger).len());
            next = size.saturating_mul(2);
        }
        match reader.read(&mut out[filled..]) {
            Ok(0) => break Ok(()),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(DecodeError::Corrupt(name, e.to_string())),
        }
    };
    if let Err(e) = outcome {
        // The buffer is dropped here, and a fallback decoder may reserve its own.
        budget.release(out.len());
        return Err(e);
    }
    out.truncate(filled);
    Ok(out)
}

/// Inflates a body's first line as its raw bytes arrive, stopping at the first newline or past `cap` bytes of
/// output, so an envelope's header (its `dsn`) can be read before the rest of the body is even received.
pub struct FirstLine {
    decoder: LineDecoder,
    /// Raw bytes fed so far.
    fed: usize,
}

/// The push decoders, each writing into a [`LineSink`].
enum LineDecoder {
    Identity(LineSink),
    Gzip(flate2::write::MultiGzDecoder<LineSink>),
    Zlib(flate2::write::ZlibDecoder<LineSink>),
    Deflate(flate2::write::DeflateDecoder<LineSink>),
    Brotli(Box<brotli::DecompressorWriter<LineSink>>),
    Zstd(zstd::stream::write::Decoder<'static, LineSink>),
}

/// Output collected up to the first newline; refuses more once it has it (or has more than `cap` bytes), which
/// stops the decoder writing into it: a bomb behind the first line is never inflated.
struct LineSink {
    out: Vec<u8>,
    cap: usize,
}

impl LineSink {
    fn done(&self) -> bool {
        self.out.contains(&b'\n') || self.out.len() > self.cap
    }
}

impl Write for LineSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.done() {
            return Err(std::io::Error::other("first line complete"));
        }
        let take = buf.len().min(self.cap + 1 - self.out.len());
        let end = buf[..take]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(take, |i| i + 1);
        self.out.extend_from_slice(&buf[..end]);
        Ok(end)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What [`FirstLine::feed`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The first line, without its newline.
    Complete(Vec<u8>),
    /// No newline yet: feed more.
    Partial,
}

impl FirstLine {
    pub fn new(content_encoding: Option<&str>, cap: usize) -> Result<Self, DecodeError> {
        let sink = LineSink {
            out: Vec::new(),
            cap,
        };
        let decoder = match parse_encoding(content_encoding)? {
            Encoding::Identity => LineDecoder::Identity(sink),
            Encoding::Gzip => LineDecoder::Gzip(flate2::write::MultiGzDecoder::new(sink)),
            Encoding::Deflate => LineDecoder::Zlib(flate2::write::ZlibDecoder::new(sink)),
            Encoding::Brotli => {
                LineDecoder::Brotli(Box::new(brotli::DecompressorWriter::new(sink, 4096)))
            }
            Encoding::Zstd => LineDecoder::Zstd(
                zstd::stream::write::Decoder::new(sink)
                    .map_err(|e| DecodeError::Corrupt("zstd", e.to_string()))?,
            ),
        };
        Ok(Self { decoder, fed: 0 })
    }

    /// Feeds the raw body received so far (the same buffer, grown); `at_end` once it is all there.
    pub fn feed(&mut self, raw: &[u8], at_end: bool) -> Result<Line, DecodeError> {
        let new = &raw[self.fed.min(raw.len())..];
        let written = self.decoder.write_all(new);
        self.fed = raw.len();
        let sink = self.decoder.sink();
        if sink.out.len() > sink.cap {
            return Err(DecodeError::TooLarge(sink.cap));
        }
        if let Some(line) = sink.out.strip_suffix(b"\n") {
            return Ok(Line::Complete(line.to_vec()));
        }
        match written {
            // Some clients send raw deflate under this name; accept it as `decode_body` does.
            Err(_) if matches!(self.decoder, LineDecoder::Zlib(_)) => {
                let cap = sink.cap;
                self.decoder = LineDecoder::Deflate(flate2::write::DeflateDecoder::new(LineSink {
                    out: Vec::new(),
                    cap,
                }));
                self.fed = 0;
                self.feed(raw, at_end)
            }
            Err(e) => Err(DecodeError::Corrupt(self.decoder.name(), e.to_string())),
            // A body of one line and no newline is all header.
            Ok(()) if at_end => Ok(Line::Complete(sink.out.clone())),
            Ok(()) => Ok(Line::Partial),
        }
    }
}

impl LineDecoder {
    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Identity(sink) => sink.write_all(data),
            Self::Gzip(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Zlib(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Deflate(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Brotli(d) => d.write_all(data).and_then(|()| d.flush()),
            Self::Zstd(d) => d.write_all(data).and_then(|()| d.flush()),
        }
    }

    fn sink(&self) -> &LineSink {
        match self {
            Self::Identity(sink) => sink,
            Self::Gzip(d) => d.get_ref(),
            Self::Zlib(d) => d.get_ref(),
            Self::Deflate(d) => d.get_ref(),
            Self::Brotli(d) => d.get_ref(),
            Self::Zstd(d) => d.get_ref(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Identity(_) => "identity",
            Self::Gzip(_) => "gzip",
            Self::Zlib(_) | Self::Deflate(_) => "deflate",
            Self::Brotli(_) => "br",
            Self::Zstd(_) => "zstd",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const TEXT: &[u8] =
        b"{\"event_id\":\"9ec79c33ec9942ab8353589fcb2e04dc\"}\n{\"type\":\"event\"}\n{}";

    pub fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn decode(enc: Option<&str>, body: Vec<u8>, limit: usize) -> Result<Bytes, DecodeError> {
        decode_body(enc, Bytes::from(body), limit)
    }

    #[test]
    fn all_four_encodings_round_trip() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(TEXT).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 4, 22)
            .write_all(TEXT)
            .unwrap();
        let zs = zstd::encode_all(TEXT, 3).unwrap();
        for (enc, body) in [
            ("gzip", gzip(TEXT)),
            ("x-gzip", gzip(TEXT)),
            ("deflate", z.finish().unwrap()),
            ("deflate", raw.finish().unwrap()),
            ("br", br),
            ("zstd", zs),
            ("identity", TEXT.to_vec()),
            ("GZIP", gzip(TEXT)),
        ] {
            assert_eq!(
                &decode(Some(enc), body, 1 << 20).unwrap()[..],
                TEXT,
                "{enc}"
            );
        }
        assert_eq!(&decode(None, TEXT.to_vec(), 1 << 20).unwrap()[..], TEXT);
    }

    #[test]
    fn a_gzip_body_of_several_members_is_read_whole() {
        let (head, tail) = TEXT.split_at(20);
        let body = [gzip(head), gzip(tail)].concat();
        assert_eq!(&decode(Some("gzip"), body, 1 << 20).unwrap()[..], TEXT);
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let bomb = gzip(&zeros);
        assert!(bomb.len() < 20_000);
        assert_eq!(
            decode(Some("gzip"), bomb, 1 << 20),
            Err(DecodeError::TooLarge(1 << 20))
        );
        assert_eq!(
            decode(
                Some("zstd"),
                zstd::encode_all(&zeros[..], 19).unwrap(),
                1 << 20
            ),
            Err(DecodeError::TooLarge(1 << 20))
        );
        assert_eq!(
            decode(None, vec![b'x'; 11], 10),
            Err(DecodeError::TooLarge(10))
        );
    }

    #[test]
    fn stacked_unknown_and_corrupt_encodings_are_refused() {
        assert!(matches!(
            decode(Some("gzip, br"), gzip(TEXT), 1 << 20),
            Err(DecodeError::Stacked(_))
        ));
        assert!(matches!(
            decode(Some("compress"), TEXT.to_vec(), 1 << 20),
            Err(DecodeError::Unsupported(_))
        ));
        assert!(matches!(
            decode(Some("gzip"), TEXT.to_vec(), 1 << 20),
            Err(DecodeError::Corrupt("gzip", _))
        ));
        assert!(matches!(
            decode(Some("br"), b"\xff\xff\xff\xff garbage".to_vec(), 1 << 20),
            Err(DecodeError::Corrupt("br", _))
        ));
        assert!(matches!(
            decode(Some("zstd"), TEXT.to_vec(), 1 << 20),
            Err(DecodeError::Corrupt("zstd", _))
        ));
        // A truncated gzip stream is corrupt, not silently short.
        let mut cut = gzip(TEXT);
        cut.truncate(cut.len() - 6);
        assert!(matches!(
            decode(Some("gzip"), cut, 1 << 20),
            Err(DecodeError::Corrupt("gzip", _))
        ));
    }
    #[test]
    fn growth_is_asked_for_before_it_happens_and_can_be_refused() {
        /// Holds at most `cap` bytes, and records the most it held.
        struct Capped {
            cap: usize,
            held: usize,
            peak: usize,
        }
        impl OutputBudget for Capped {
            fn reserve(&mut self, bytes: usize) -> bool {
                self.held += bytes;
                self.peak = self.peak.max(self.held);
                self.held <= self.cap
            }
            fn release(&mut self, bytes: usize) {
                self.held -= bytes;
            }
        }
        let bomb = Bytes::from(gzip(&vec![0u8; 10 << 20]));
        let mut small = Capped {
            cap: 1 << 20,
            held: 0,
            peak: 0,
        };
        let refused = decode_body_within(Some("gzip"), bomb.clone(), 100 << 20, &mut small);
        assert_eq!(refused, Err(DecodeError::Refused));
        let mut large = Capped {
            cap: 100 << 20,
            held: 0,
            peak: 0,
        };
        let out = decode_body_within(Some("gzip"), bomb, 100 << 20, &mut large).unwrap();
        assert_eq!(out.len(), 10 << 20);
        // The final buffer is held; while it was copied into, its predecessor was too.
        assert!(
            large.held >= out.len() && large.held < 2 * out.len(),
            "{}",
            large.held
        );
        assert!(
            large.peak > large.held && large.peak <= 2 * large.held,
            "{}",
            large.peak
        );
        // The identity encoding allocates nothing.
        let mut none = Capped {
            cap: 0,
            held: 0,
            peak: 0,
        };
        let plain = decode_body_within(None, Bytes::from_static(TEXT), 1 << 20, &mut none);
        assert_eq!(&plain.unwrap()[..], TEXT);
    }

    /// Feeds `raw` a few bytes at a time, as a slow client would send it.
    fn first_line(encoding: Option<&str>, raw: &[u8], step: usize) -> Result<Line, DecodeError> {
        let mut line = FirstLine::new(encoding, 1024)?;
        let mut end = 0;
        loop {
            end = (end + step).min(raw.len());
            match line.feed(&raw[..end], end == raw.len())? {
                Line::Partial if end < raw.len() => {}
                found => return Ok(found),
            }
        }
    }

    #[test]
    fn the_first_line_is_read_from_every_encoding_a_few_bytes_at_a_time() {
        let header = b"{\"dsn\":\"https://abc@example.com/1\"}";
        let mut body = header.to_vec();
        body.extend_from_slice(b"\n{\"type\":\"event\"}\n");
        body.extend_from_slice(&[b'x'; 100_000]);
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&body).unwrap();
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(&body).unwrap();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 4, 22)
            .write_all(&body)
            .unwrap();
        for (encoding, bytes) in [
            (None, body.clone()),
            (Some("gzip"), gzip(&body)),
            (Some("deflate"), zlib.finish().unwrap()),
            (Some("deflate"), raw.finish().unwrap()),
            (Some("br"), br),
            (Some("zstd"), zstd::encode_all(&body[..], 3).unwrap()),
        ] {
            for step in [1, 7, usize::MAX / 2] {
                assert_eq!(
                    first_line(encoding, &bytes, step),
                    Ok(Line::Complete(header.to_vec())),
                    "{encoding:?} step {step}"
                );
            }
        }
        // A body that is one line without a newline is all header.
        assert_eq!(
            first_line(Some("gzip"), &gzip(header), 3),
            Ok(Line::Complete(header.to_vec()))
        );
    }

    #[test]
    fn a_first_line_past_the_cap_stops_the_inflating() {
        // 100 MiB of zeros, no newline: refused after about the cap, not after inflating it all.
        let bomb = gzip(&vec![b'0'; 100 << 20]);
        assert_eq!(
            first_line(Some("gzip"), &bomb, usize::MAX / 2),
            Err(DecodeError::TooLarge(1024))
        );
        assert!(matches!(
            first_line(Some("gzip"), b"not gzip at all", 4),
            Err(DecodeError::Corrupt("gzip", _))
        ));
    }
}
