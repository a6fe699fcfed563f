//! `decode_body`, the `Content-Encoding` decoder ingest runs on every request body, with its cap.
//!
//! The first input byte picks the encoding header (and a mode), the second the cap; the rest is the body.
//! Invariants, beyond not panicking:
//! - a decoded body never exceeds its cap, and `TooLarge` names the cap it was given;
//! - identity returns the body unchanged when it fits, `TooLarge` when it does not;
//! - a body that decodes under a cap decodes to the same bytes under any larger cap;
//! - round trip (mode bit set): the rest of the input, compressed with the chosen encoder, decodes back to
//!   itself when it fits the cap and is `TooLarge` when it does not.
#![no_main]

use std::io::Write;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use splat::protocol::{decode_body, DecodeError};

const ENCODINGS: &[Option<&str>] = &[
    None,
    Some("identity"),
    Some("gzip"),
    Some("x-gzip"),
    Some("deflate"),
    Some("br"),
    Some("zstd"),
    Some("GZIP"),
    Some(" zstd , identity"),
    Some("gzip, br"),
    Some("compress"),
    Some(""),
];

const CAPS: &[usize] = &[0, 1, 7, 64, 1000, 4096, 65_536, 1 << 20];
const BIG_CAP: usize = 1 << 20;

fn compress(encoding: &str, data: &[u8]) -> Option<Vec<u8>> {
    Some(match encoding.trim().to_ascii_lowercase().as_str() {
        "gzip" | "x-gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
                w.write_all(data).unwrap();
            }
            out
        }
        "zstd" => zstd::encode_all(data, 1).unwrap(),
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let [selector, cap, rest @ ..] = data else {
        return;
    };
    let encoding = ENCODINGS[usize::from(selector & 0x7f) % ENCODINGS.len()];
    let cap = CAPS[usize::from(*cap) % CAPS.len()];
    let round_trip = selector & 0x80 != 0;

    let body = if round_trip {
        match encoding.and_then(|e| compress(e, rest)) {
            Some(compressed) => compressed,
            None => return,
        }
    } else {
        rest.to_vec()
    };
    let result = decode_body(encoding, Bytes::from(body.clone()), cap);
    match &result {
        Ok(out) => assert!(out.len() <= cap, "decoded {} bytes past the cap {cap}", out.len()),
        Err(DecodeError::TooLarge(limit)) => assert_eq!(*limit, cap),
        Err(_) => {}
    }
    let identity = encoding.is_none_or(|e| e.split(',').all(|c| c.trim().is_empty() || c.trim().eq_ignore_ascii_case("identity")));
    if identity {
        if rest.len() <= cap {
            assert_eq!(result.as_deref(), Ok(rest));
        } else {
            assert_eq!(result, Err(DecodeError::TooLarge(cap)));
        }
    }
    if let Ok(out) = &result {
        if cap < BIG_CAP {
            let bigger = decode_body(encoding, Bytes::from(body.clone()), BIG_CAP);
            assert_eq!(bigger.as_ref(), Ok(out), "a larger cap changed the result");
        }
    }
    if round_trip {
        if rest.len() <= cap {
            assert_eq!(result.as_deref(), Ok(rest), "round trip through {encoding:?}");
        } else {
            assert_eq!(result, Err(DecodeError::TooLarge(cap)), "round trip through {encoding:?}");
        }
    }
});
