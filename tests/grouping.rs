//! Grouping on a corpus of real SDK events (`tests/fixtures/grouping`, captured from sentry-python and
//! @sentry/node, plus events in the Rust SDK's shape): the same bug from different lines, values and call
//! paths lands in one issue; different bugs do not.
//!
//! Issues are assigned exactly as the processor assigns them: an event joins the issue that any of its
//! hashes already points to, and its other hashes then point there too.

use std::collections::HashMap;
use std::path::Path;

use splat::grouping::group;
use splat::model::Event;

#[derive(serde::Deserialize)]
struct Expected {
    file: String,
    group: String,
    why: String,
}

#[test]
fn the_corpus_groups_as_labelled() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/grouping");
    let expected: Vec<Expected> =
        serde_json::from_slice(&std::fs::read(root.join("expected.json")).unwrap()).unwrap();
    assert!(expected.len() >= 80, "the corpus is complete");
    let mut issue_of_hash: HashMap<String, usize> = HashMap::new();
    let mut issues: Vec<usize> = Vec::new();
    for case in &expected {
        let payload =
            std::fs::read(root.join(&case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let grouping = group(&Event::from_payload(&payload).unwrap());
        let issue = grouping
            .hashes
            .iter()
            .find_map(|h| issue_of_hash.get(h).copied())
            .unwrap_or(issue_of_hash.len() + issues.len());
        for hash in &grouping.hashes {
            issue_of_hash.entry(hash.clone()).or_insert(issue);
        }
        issues.push(issue);
    }
    let labels: std::collections::HashSet<&str> =
        expected.iter().map(|c| c.group.as_str()).collect();
    let distinct: std::collections::HashSet<usize> = issues.iter().copied().collect();
    assert_eq!(distinct.len(), labels.len(), "one issue per labelled group");
    let mut failures = Vec::new();
    for (i, a) in expected.iter().enumerate() {
        for (j, b) in expected.iter().enumerate().skip(i + 1) {
            let same_issue = issues[i] == issues[j];
            if same_issue != (a.group == b.group) {
                let verdict = if same_issue { "merged" } else { "split" };
                failures.push(format!(
                    "{verdict}: {} [{}: {}] vs {} [{}: {}]",
                    a.file, a.group, a.why, b.file, b.group, b.why
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong pairs:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
