//! `Content-Encoding` as Relay accepts it: gzip, deflate (zlib-wrapped, raw as a fallback), br and zstd.
//! Decompression streams into a buffer that may never exceed the limit, so a bomb costs at most `limit` bytes.

use std::io::Read;

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
    let out = match parse_encoding(content_encoding)? {
        Encoding::Identity => {
            if body.len() > limit {
                return Err(DecodeError::TooLarge(limit));
            }
            return Ok(body);
        }
        Encoding::Gzip => read_capped(
            flate2::read::MultiGzDecoder::new(&body[..]),
            limit,
            "gzip",
            body.len(),
        )?,
        Encoding::Deflate => match read_capped(
            flate2::read::ZlibDecoder::new(&body[..]),
            limit,
            "deflate",
            body.len(),
        ) {
            // Some clients send raw deflate under this name; accept it as browsers do.
            Err(DecodeError::Corrupt(..)) => read_capped(
                flate2::read::DeflateDecoder::new(&body[..]),
                limit,
                "deflate",
                body.len(),
            )?,
            other => other?,
        },
        Encoding::Brotli => read_capped(
            brotli::Decompressor::new(&body[..], 4096),
            limit,
            "br",
            body.len(),
        )?,
        Encoding::Zstd => {
            let decoder = zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| DecodeError::Corrupt("zstd", e.to_string()))?;
            read_capped(decoder, limit, "zstd", body.len())?
        }
    };
    Ok(Bytes::from(out))
}

/// Inflates zlib data (the legacy store endpoint's base64+zlib bodies) with the same cap.
pub fn inflate_zlib(data: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    read_capped(
        flate2::read::ZlibDecoder::new(data),
        limit,
        "zlib",
        data.len(),
    )
}

fn read_capped(
    reader: impl Read,
    limit: usize,
    name: &'static str,
    compressed_len: usize,
) -> Result<Vec<u8>, DecodeError> {
    // JSON compresses about 4:1; starting there saves most regrowth copies without trusting the input.
    let mut out = Vec::with_capacity(compressed_len.saturating_mul(4).min(limit));
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| DecodeError::Corrupt(name, e.to_string()))?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge(limit));
    }
    Ok(out)
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
}
