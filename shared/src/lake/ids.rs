//! Ids between the hex text SDKs send (and the database keeps) and the lake's binary columns: trace, event
//! and log ids as 16 bytes, span ids as an unsigned 64-bit integer (their 16 hex digits, big-endian).
//! Text that is not an id of the right length becomes NULL in the lake, as Relay drops an invalid id.

/// The value of exactly `digits` hex digits (either case); dashes are skipped when `dashes` allows them
/// (a UUID's printed form). Never allocates, whatever the text's length.
fn parse_hex(text: &str, digits: usize, dashes: bool) -> Option<u128> {
    let mut value: u128 = 0;
    let mut seen = 0;
    for c in text.chars() {
        if dashes && c == '-' {
            continue;
        }
        let digit = c.to_digit(16)?;
        seen += 1;
        if seen > digits {
            return None;
        }
        value = value << 4 | u128::from(digit);
    }
    (seen == digits).then_some(value)
}

/// A trace, event or log id: 32 hex digits, with or without a UUID's dashes.
pub fn uuid(text: &str) -> Option<[u8; 16]> {
    parse_hex(text, 32, true).map(u128::to_be_bytes)
}

/// A span id: 16 hex digits.
pub fn span_id(text: &str) -> Option<u64> {
    parse_hex(text, 16, false).map(|v| v as u64)
}

/// 32 lowercase hex digits, as SDKs send ids and the database keeps them.
pub fn uuid_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// 16 lowercase hex digits.
pub fn span_hex(id: u64) -> String {
    format!("{id:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_anything_else_is_none() {
        let trace = "0123456789abcdef0123456789ABCDEF";
        let bytes = uuid(trace).unwrap();
        assert_eq!(bytes[0], 0x01);
        assert_eq!(uuid_hex(&bytes), trace.to_ascii_lowercase());
        assert_eq!(uuid("01234567-89ab-cdef-0123-456789abcdef"), Some(bytes));
        assert_eq!(
            span_hex(span_id("a1b2c3d4e5f60718").unwrap()),
            "a1b2c3d4e5f60718"
        );
        assert_eq!(span_id("ffffffffffffffff"), Some(u64::MAX));
        for bad in [
            "",
            "0123",
            "+123456789abcdef",
            "a1b2c3d4e5f6071",
            "a1b2c3d4e5f607189",
            "a1b2-c3d4e5f60718",
            "é1b2c3d4e5f60718",
        ] {
            assert_eq!(span_id(bad), None, "{bad}");
        }
        assert_eq!(uuid(&"0".repeat(33)), None);
        assert_eq!(uuid(&"z".repeat(32)), None);
        assert_eq!(uuid(&"a".repeat(1_000_000)), None);
    }
}
