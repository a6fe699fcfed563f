//! How deep JSON nests, for the targets that check what a full read (serde_json) accepts.

/// serde_json's recursion limit for a full read: 128 levels fail, 127 do not.
pub const MAX_DEPTH: usize = 128;

/// How deep arrays and objects nest, outside strings.
pub fn depth(data: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in data {
        match (in_string, b) {
            (true, _) if escaped => escaped = false,
            (true, b'\\') => escaped = true,
            (_, b'"') => in_string = !in_string,
            (false, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}
