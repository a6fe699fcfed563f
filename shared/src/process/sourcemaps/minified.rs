//! The minified file, for the original names of functions. A frame names its function as the minified
//! code does (`a`); walking back from the frame's token, the token at that name right after a `function`
//! keyword (`function a(`) carries the original name in the map. This is the `sourcemap` crate's own
//! heuristic (`SourceView::get_original_function_name`), which Sentry's processor used, but the crate
//! finds each token's text by scanning the minified line from its start: on a bundle minified into one
//! line of megabytes that is milliseconds per frame. Here each line that is not ASCII is marked every
//! [`STEP`] UTF-16 units (the unit of a map's columns) once, when the file is read, so finding a token's
//! text reads at most that many characters.

use sourcemap::SourceMap;

/// UTF-16 units between the marks of a line that is not ASCII.
const STEP: u32 = 64;
/// Tokens walked back from the frame's, at most (the crate's bound).
const MAX_TOKENS_BACK: usize = 128;

pub(super) struct Minified {
    text: String,
    lines: Vec<Line>,
    /// (UTF-16 column, byte offset in its line) of the first character at or past each multiple of
    /// [`STEP`], for the lines that are not ASCII, one line after another.
    marks: Vec<(u32, u32)>,
}

/// Where a line is in the text (its end without the line break), and its first mark; an ASCII line has
/// none (its columns are its bytes).
struct Line {
    start: u32,
    end: u32,
    first_mark: u32,
}

impl Minified {
    /// `None` for a file past 4 GiB (never: files are capped far below).
    pub(super) fn new(text: String) -> Option<Self> {
        u32::try_from(text.len()).ok()?;
        let (mut lines, mut marks) = (Vec::new(), Vec::new());
        let mut start = 0;
        for raw in text.split_inclusive('\n') {
            let line = raw.trim_end_matches(['\n', '\r']);
            let first_mark = marks.len() as u32;
            if !line.is_ascii() {
                let (mut column, mut next) = (0u32, 0u32);
                for (byte, c) in line.char_indices() {
                    if column >= next {
                        marks.push((column, byte as u32));
                        next = column - column % STEP + STEP;
                    }
                    column += c.len_utf16() as u32;
                }
            }
            lines.push(Line {
                start: start as u32,
                end: (start + line.len()) as u32,
                first_mark,
            });
            start += raw.len();
        }
        Some(Self { text, lines, marks })
    }

    /// Bytes held, for the cache's budget.
    pub(super) fn bytes(&self) -> usize {
        self.text.len()
            + self.lines.len() * std::mem::size_of::<Line>()
            + self.marks.len() * std::mem::size_of::<(u32, u32)>()
    }

    /// The rest of `line` from UTF-16 column `column`, or `None` at or past its end.
    fn rest_of_line(&self, line: u32, column: u32) -> Option<&str> {
        let index = line as usize;
        let l = self.lines.get(index)?;
        let text = &self.text[l.start as usize..l.end as usize];
        let last_mark = self
            .lines
            .get(index + 1)
            .map_or(self.marks.len(), |next| next.first_mark as usize);
        let marks = &self.marks[l.first_mark as usize..last_mark];
        let byte = if marks.is_empty() {
            column as usize
        } else {
            // Marks start at column 0, so one is at or before any column.
            let (mut at, byte) = marks[marks.partition_point(|&(c, _)| c <= column) - 1];
            let mut byte = byte as usize;
            for c in text[byte..].chars() {
                if at >= column {
                    break;
                }
                at += c.len_utf16() as u32;
                byte += c.len_utf8();
            }
            byte
        };
        text.get(byte..).filter(|rest| !rest.is_empty())
    }

    /// The identifier a token points at (after any whitespace), as the crate reads it.
    fn identifier_at(&self, line: u32, column: u32) -> Option<&str> {
        identifier_prefix(self.rest_of_line(line, column)?.split_whitespace().next()?)
    }

    /// The original name of the function that the frame at (`line`, `column`) of the minified file is
    /// in, from its minified name (see the module's docs).
    pub(super) fn original_function_name<'m>(
        &self,
        map: &'m SourceMap,
        line: u32,
        column: u32,
        minified_name: &str,
    ) -> Option<&'m str> {
        if identifier_prefix(minified_name) != Some(minified_name) {
            return None;
        }
        let frame_token = token_index(map, line, column)?;
        let mut later: Option<(sourcemap::Token<'m>, Option<&str>)> = None;
        for index in (0..=frame_token).rev().take(MAX_TOKENS_BACK) {
            let token = map.get_token(index)?;
            let text = self.identifier_at(token.get_dst_line(), token.get_dst_col());
            if let Some((named, Some(name))) = later {
                if name == minified_name && text == Some("function") {
                    return named.get_name();
                }
            }
            later = Some((token, text));
        }
        None
    }
}

/// The index of the token at or before (`line`, `column`): the last one not after it.
fn token_index(map: &SourceMap, line: u32, column: u32) -> Option<usize> {
    let (mut low, mut high) = (0, map.get_token_count() as usize);
    while low < high {
        let middle = low + (high - low) / 2;
        match map.get_token(middle) {
            Some(t) if t.get_dst() <= (line, column) => low = middle + 1,
            _ => high = middle,
        }
    }
    low.checked_sub(1)
}

/// The JavaScript identifier `s` starts with.
fn identifier_prefix(s: &str) -> Option<&str> {
    let mut chars = s.char_indices();
    let (_, first) = chars.next()?;
    if !(first == '$' || first == '_' || first.is_alphabetic()) {
        return None;
    }
    let end = chars
        .find(|&(_, c)| {
            !(c == '$' || c == '_' || c == '\u{200c}' || c == '\u{200d}' || c.is_alphanumeric())
        })
        .map_or(s.len(), |(i, _)| i);
    Some(&s[..end])
}

#[cfg(test)]
mod tests {
    use sourcemap::{SourceMapBuilder, SourceView};

    use super::*;

    /// A long minified line (with characters outside ASCII and the BMP before the functions, so columns
    /// and bytes differ) of many small functions calling each other, and its map.
    fn minified_and_map(functions: u32) -> (String, SourceMap) {
        let mut text = String::from("var s=\"é😀ü\";");
        let mut builder = SourceMapBuilder::new(None);
        for i in 0..functions {
            let column = text.encode_utf16().count() as u32;
            let minified = format!("function a{i}(n){{return b(n)+\"ß\"}}");
            // Tokens at `function`, the name, and the call inside, as a minifier maps them.
            builder.add(0, column, i, 0, Some("src/app.js"), None, false);
            builder.add(
                0,
                column + 9,
                i,
                9,
                Some("src/app.js"),
                Some(&format!("original{i}")),
                false,
            );
            builder.add(
                0,
                column + 24,
                i,
                20,
                Some("src/app.js"),
                Some("helper"),
                false,
            );
            text.push_str(&minified);
        }
        (text, builder.into_sourcemap())
    }

    #[test]
    fn names_are_those_the_crate_finds_without_rescanning_the_line() {
        let (text, map) = minified_and_map(600);
        let view = SourceView::from_string(text.clone());
        let minified = Minified::new(text).unwrap();
        let mut found = 0;
        for token in map.tokens().step_by(7) {
            let (line, at) = token.get_dst();
            // At the token, and inside it (where a frame's column usually falls).
            for column in [at, at + 1] {
                for name in ["a5", "a599", "b", "function", "x.y"] {
                    let ours = minified.original_function_name(&map, line, column, name);
                    let crates = map.get_original_function_name(line, column, name, &view);
                    assert_eq!(ours, crates, "{name} at {line}:{column}");
                    found += usize::from(ours.is_some());
                }
            }
        }
        assert!(found > 0, "some names were found");
        // The frame inside the last function (its call of `b`) names the original function.
        let call = map.tokens().last().unwrap().get_dst();
        assert_eq!(
            minified.original_function_name(&map, call.0, call.1, "a599"),
            Some("original599")
        );
    }

    #[test]
    fn columns_count_utf16_units() {
        let minified = Minified::new("x😀y\nabc\n".repeat(40)).unwrap();
        assert_eq!(minified.rest_of_line(0, 3), Some("y"));
        assert_eq!(minified.rest_of_line(0, 1), Some("😀y"));
        assert_eq!(minified.rest_of_line(1, 1), Some("bc"));
        assert_eq!(minified.rest_of_line(1, 3), None);
        assert_eq!(minified.rest_of_line(80, 0), None);
    }
}
