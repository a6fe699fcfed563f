//! Tags as SDKs send them: an object (`{"browser": "Firefox"}`) or a list of `[key, value]` pairs
//! (`[["browser", "Firefox"]]`, the shape Relay normalizes them to). Request headers come the same two
//! ways. Read here once, for the event reader, the transaction reader and the pages that show a payload.

use serde_json::Value;

/// Each tag as sent, in the order sent: its key and its value as JSON (a string, usually). A pair whose
/// key is not a string, or that lacks a value, is no tag; anything but an object or a list holds none.
pub fn tag_pairs(tags: &Value) -> impl Iterator<Item = (&str, &Value)> {
    let object = tags.as_object().into_iter().flatten();
    let pairs = tags.as_array().into_iter().flatten().filter_map(|pair| {
        let pair = pair.as_array()?;
        Some((pair.first()?.as_str()?, pair.get(1)?))
    });
    object.map(|(k, v)| (k.as_str(), v)).chain(pairs)
}

/// The value of one tag; the first pair with that key when sent as a list.
pub fn tag<'a>(tags: &'a Value, key: &str) -> Option<&'a Value> {
    tag_pairs(tags).find_map(|(k, v)| (k == key).then_some(v))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn object_or_pairs_read_alike() {
        let object = json!({"browser": "Firefox", "n": 3});
        let pairs = json!([
            ["browser", "Firefox"],
            ["n", 3],
            ["n", 4],
            [1, "x"],
            ["lonely"],
            "x"
        ]);
        let read = |v: &Value| {
            tag_pairs(v)
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            read(&object),
            [("browser".into(), json!("Firefox")), ("n".into(), json!(3))]
        );
        assert_eq!(read(&pairs)[..2], read(&object)[..]);
        assert_eq!(tag(&pairs, "n"), Some(&json!(3)));
        assert_eq!(tag(&object, "n"), Some(&json!(3)));
        assert_eq!(tag(&pairs, "lonely"), None);
        assert_eq!(read(&json!("browser=Firefox")), []);
        assert_eq!(tag(&Value::Null, "n"), None);
    }
}
