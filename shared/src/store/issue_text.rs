//! An issue list's full-text terms, and which of three ways reads them fastest.
//!
//! Every positive word and phrase of a search is one FTS5 match. How a list reads it depends on how many
//! issues match, found with a bounded read of the index:
//!
//! - **Rare** (at most [`RARE_TEXT_ISSUES`]): those issues are read by id and sorted.
//! - **Listed**: the matches are listed once, and the walk of the issues in page order looks each issue
//!   up in that list. Listing costs every match (300,000 of them for a word in 30% of a million titles:
//!   some 40 ms for the page and as much again for its count).
//! - **Walked**: the walk in page order asks the full-text index about each issue it reads, by rowid, so
//!   a common word costs the few dozen issues a page reads. Each such check costs about what listing
//!   [`CHECK_COST_IN_MATCHES`] matches costs, so a list is walked only when its page reads few enough
//!   issues. FTS5 answers a prefix query (`"word"*`, what a typed word is) by merging every matching
//!   issue's entry first, even for one rowid; a walked match therefore names its words' terms exactly,
//!   read from the index's vocabulary ([`MAX_PREFIX_TERMS`] at most per word).
//!
//! All three give the same issues: the match is the same set, only the order of reading differs.

use super::issue_search::{fts_match, Filter, Term};
use super::{Result, Store};

/// Up to this many issues (of any project) match the text: a list reads them by id (a few ms).
pub(super) const RARE_TEXT_ISSUES: i64 = 5_000;

/// A check of one issue against one term of the full-text index by rowid (about 10 µs: a cursor seeks
/// each segment of the index) costs about what listing this many matches costs (about 250 ns each: read
/// from the index, then kept in a list, for the page and again for its count).
const CHECK_COST_IN_MATCHES: i64 = 40;

/// A count's budget is in index reads (a few hundred nanoseconds each); a check of one term against the
/// full-text index by rowid costs about this many.
pub(super) const CHECK_COST_IN_READS: usize = 20;

/// A typed word is a prefix; past this many terms that begin with it, checking each issue against all
/// of them costs more than listing the matches.
const MAX_PREFIX_TERMS: usize = 4;

/// How a list reads its full-text match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TextPath {
    Rare,
    Listed,
    /// Each issue the walk reads is checked; the match has this many terms to check.
    Walked {
        terms: usize,
    },
}

/// The FTS5 match of a list's positive words and phrases, and how the list reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TextMatch {
    pub fts: String,
    pub path: TextPath,
}

/// The one FTS5 match of a list's positive words and phrases (each word a prefix), if it has any.
pub(super) fn prefix_match(terms: &[Term]) -> Option<String> {
    let matches: Vec<String> = positive_text(terms)
        .map(|(words, phrase)| fts_match(words, phrase))
        .collect();
    (!matches.is_empty()).then(|| matches.join(" AND "))
}

fn positive_text(terms: &[Term]) -> impl Iterator<Item = (&[String], bool)> {
    terms.iter().filter_map(|t| match &t.filter {
        Filter::Text { words, phrase } if !t.negated => Some((words.as_slice(), *phrase)),
        _ => None,
    })
}

/// How the index folds a word the simple way: ASCII letters and digits only, lower-cased (anything else
/// is left to FTS5's own tokenizer, and its list is not walked).
fn folded(word: &str) -> Option<String> {
    word.chars()
        .all(|c| c.is_ascii_alphanumeric())
        .then(|| word.to_ascii_lowercase())
}

/// The first string after every string that begins with `prefix` (ASCII letters and digits).
fn past_prefix(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last += 1;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

impl Store {
    /// The full-text match of a list's terms and the path its page reads it by: `page_rows` issues
    /// matched up to the page's last one.
    pub(super) async fn text_match(
        &self,
        terms: &[Term],
        page_rows: i64,
    ) -> Result<Option<TextMatch>> {
        let Some(prefixed) = prefix_match(terms) else {
            return Ok(None);
        };
        let (fts, terms) = match self.exact_match(terms).await? {
            Some((fts, n)) => (fts, n),
            None => (prefixed, 0),
        };
        let (matched, last_id) = self.probe_text(&fts).await?;
        if matched <= RARE_TEXT_ISSUES {
            return Ok(Some(TextMatch {
                fts,
                path: TextPath::Rare,
            }));
        }
        // From the density of the first matches by id: the matches in all, and the issues a walk reads
        // to fill the page. The walk wins when its checks cost less than listing every match.
        let ids = self
            .scalar("SELECT coalesce(max(id), 0) FROM issues", ())
            .await?;
        let density = matched as f64 / last_id.max(1) as f64;
        let listed = density * ids as f64;
        let checks = page_rows as f64 / density * terms as f64;
        let walk = terms > 0 && checks * CHECK_COST_IN_MATCHES as f64 <= listed;
        let path = match walk {
            true => TextPath::Walked { terms },
            false => TextPath::Listed,
        };
        Ok(Some(TextMatch { fts, path }))
    }

    /// The match with every word's prefix replaced by the terms of the index that begin with it, and
    /// how many terms it has; `None` if a word is not plain ASCII or begins too many terms.
    pub(super) async fn exact_match(&self, terms: &[Term]) -> Result<Option<(String, usize)>> {
        let mut parts = Vec::new();
        let mut count = 0;
        for (words, phrase) in positive_text(terms) {
            let Some(folded) = words.iter().map(|w| folded(w)).collect::<Option<Vec<_>>>() else {
                return Ok(None);
            };
            if phrase {
                count += folded.len();
                parts.push(fts_match(&folded, true));
                continue;
            }
            for word in folded {
                let Some(expanded) = self.terms_beginning(&word).await? else {
                    return Ok(None);
                };
                count += expanded.len();
                let quoted: Vec<String> = expanded.iter().map(|t| format!("\"{t}\"")).collect();
                parts.push(format!("({})", quoted.join(" OR ")));
            }
        }
        Ok(Some((parts.join(" AND "), count)))
    }

    /// `word` and the terms of the full-text index that begin with it, or `None` past
    /// [`MAX_PREFIX_TERMS`]. The longer terms are read from just past `word` itself (a NUL after it),
    /// so that the vocabulary does not walk `word`'s own (maybe long) list of issues to count them.
    async fn terms_beginning(&self, word: &str) -> Result<Option<Vec<String>>> {
        let mut rows = self
            .conn()
            .query(
                &format!(
                    "SELECT term FROM issues_fts_terms WHERE term >= ?1 AND term < ?2 LIMIT {MAX_PREFIX_TERMS}"
                ),
                (format!("{word}\0"), past_prefix(word)),
            )
            .await?;
        let mut terms = vec![word.to_owned()];
        while let Some(row) = rows.next().await? {
            terms.push(row.get(0)?);
        }
        Ok((terms.len() <= MAX_PREFIX_TERMS).then_some(terms))
    }

    /// How many issues (of any project) match, up to [`RARE_TEXT_ISSUES`] + 1, and the id of the last
    /// of them read (the index yields them by id).
    async fn probe_text(&self, fts: &str) -> Result<(i64, i64)> {
        let sql = format!(
            "SELECT count(*), coalesce(max(rowid), 0) FROM (SELECT rowid FROM issues_fts WHERE issues_fts MATCH ?1 LIMIT {})",
            RARE_TEXT_ISSUES + 1
        );
        let mut rows = self.conn().query(&sql, [fts]).await?;
        match rows.next().await? {
            Some(row) => Ok((row.get(0)?, row.get(1)?)),
            None => Ok((0, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_fold_and_others_do_not() {
        assert_eq!(folded("KeyError42"), Some("keyerror42".into()));
        assert_eq!(folded("café"), None);
        assert_eq!(folded("user_id"), None);
        assert_eq!(past_prefix("timeout"), "timeouu");
        assert_eq!(past_prefix("a9"), "a:");
    }
}
