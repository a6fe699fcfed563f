//! Grouping, as Sentry does it: which events are the same problem.
//!
//! Priority: the stack trace (frames contribute their module or file name, function and — on platforms
//! with reliable source context — the context line; never line numbers; recursion collapsed), then the
//! exception type (and its value only when no stack contributes), then the parameterized message. Two
//! variants are hashed: `app` (only in-app frames) and `system` (all frames). An event joins the issue that
//! either hash already points to. An SDK `fingerprint` replaces all this, or extends it with
//! `{{ default }}`. The algorithm is versioned ([`CONFIG`]) and the version is stored with each issue, so a
//! change here never silently regroups old issues.

use md5::{Digest, Md5};

use crate::model::{Event, Frame, Stacktrace};

mod parameterize;

pub use parameterize::parameterize;

/// The grouping algorithm's version. Bump it (and keep the old one) when hashes would change.
pub const CONFIG: &str = "splat:2026-11";

/// What grouping decided for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grouping {
    pub config: &'static str,
    /// Most specific first: the `app` hash (when in-app frames contribute), then the `system` hash.
    pub hashes: Vec<String>,
    /// Where it happened, as Sentry shows it: the transaction, else `module in function` of the top frame.
    pub culprit: Option<String>,
}

/// The contributing values of one variant, hashed together.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Components(Vec<String>);

impl Components {
    fn push(&mut self, kind: &str, value: &str) {
        self.0.push(format!("{kind}={value}"));
    }

    fn hash(&self, salt: &[String]) -> String {
        let mut md5 = Md5::new();
        for part in self.0.iter().chain(salt) {
            md5.update(part.as_bytes());
            // A separator, so that ["ab", "c"] and ["a", "bc"] differ.
            md5.update([0]);
        }
        hex::encode(md5.finalize())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Variant {
    App,
    System,
}

pub fn group(event: &Event) -> Grouping {
    let culprit = culprit(event);
    let fingerprint = event.fingerprint.as_deref().unwrap_or(&[]);
    let resolved: Vec<String> = fingerprint
        .iter()
        .map(|part| resolve_variable(part, event))
        .collect();
    let has_default = resolved.iter().any(|p| p == DEFAULT);
    let hashes = if !resolved.is_empty() && !has_default {
        // A custom fingerprint replaces grouping: hash its values as they are, in order.
        vec![Components(
            resolved
                .iter()
                .map(|p| format!("fingerprint={p}"))
                .collect(),
        )
        .hash(&[])]
    } else {
        let salt: Vec<String> = resolved
            .into_iter()
            .filter(|p| p != DEFAULT)
            .map(|p| format!("fingerprint={p}"))
            .collect();
        default_variants(event)
            .iter()
            .map(|c| c.hash(&salt))
            .collect()
    };
    Grouping {
        config: CONFIG,
        hashes,
        culprit,
    }
}

const DEFAULT: &str = "{{ default }}";

/// `{{ default }}` stays a marker; other variables take the event's values.
fn resolve_variable(part: &str, event: &Event) -> String {
    let Some(name) = part
        .trim()
        .strip_prefix("{{")
        .and_then(|p| p.strip_suffix("}}"))
        .map(str::trim)
    else {
        return part.to_owned();
    };
    let top_frame = || event.main_stacktrace().and_then(|s| s.frames.last());
    let value = match name {
        "default" => return DEFAULT.to_owned(),
        "transaction" => event.transaction.clone(),
        "type" | "error.type" => event.main_exception().and_then(|e| e.ty.clone()),
        "value" | "error.value" => event.main_exception().and_then(|e| e.value.clone()),
        "function" | "stack.function" => top_frame().and_then(|f| f.function.clone()),
        "module" | "stack.module" => top_frame().and_then(|f| f.module.clone()),
        "package" | "stack.package" => top_frame().and_then(|f| f.package.clone()),
        "level" => event.level.clone(),
        "logger" => event.logger.clone(),
        "message" => event.message.clone(),
        other => match other.strip_prefix("tags.") {
            Some(key) => event
                .tags
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone()),
            None => return part.to_owned(),
        },
    };
    value.unwrap_or_else(|| format!("<no value for {name}>"))
}

/// The `app` variant (if any in-app frame contributes) and the `system` variant.
fn default_variants(event: &Event) -> Vec<Components> {
    let app = components(event, Variant::App);
    // The system variant always has something: at worst the message, or the marker for nothing.
    let system = components(event, Variant::System).unwrap_or_default();
    match app {
        Some(app) if app != system => vec![app, system],
        _ => vec![system],
    }
}

/// The values that identify the event in one variant. For `App`, `None` when no in-app frame contributes:
/// then the system hash alone decides, as in Sentry.
fn components(event: &Event, variant: Variant) -> Option<Components> {
    let platform = event.platform.as_deref().unwrap_or_default();
    let mut out = Components::default();
    if !event.exceptions.is_empty() {
        let stacks: Vec<Components> = event
            .exceptions
            .iter()
            .map(|e| {
                e.stacktrace
                    .as_ref()
                    .map(|s| stack_components(s, platform, variant))
                    .unwrap_or_default()
            })
            .collect();
        let any_stack = stacks.iter().any(|s| !s.0.is_empty());
        if variant == Variant::App && !any_stack {
            return None;
        }
        for (exception, stack) in event.exceptions.iter().zip(stacks) {
            out.0.extend(stack.0);
            let synthetic = exception.mechanism.as_ref().is_some_and(|m| m.synthetic);
            if let Some(ty) = exception.ty.as_deref().filter(|_| !synthetic) {
                out.push("type", ty);
            }
            if !any_stack {
                if let Some(value) = &exception.value {
                    out.push("value", &parameterize(&trim_message(value)));
                }
            }
        }
        return Some(out);
    }
    // No exception: a single thread with a stack stands in for it.
    let stacks: Vec<&Stacktrace> = event
        .threads
        .iter()
        .filter_map(|t| t.stacktrace.as_ref())
        .filter(|s| !s.frames.is_empty())
        .collect();
    if let [stack] = stacks.as_slice() {
        let c = stack_components(stack, platform, variant);
        if !c.0.is_empty() {
            return Some(c);
        }
    }
    if variant == Variant::App {
        return None;
    }
    match event.message_template.as_ref().or(event.message.as_ref()) {
        Some(message) => out.push("message", &parameterize(&trim_message(message))),
        None => out.push("nothing", ""),
    }
    Some(out)
}

/// The first two non-empty lines, at most 512 bytes: stable against appended detail.
fn trim_message(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(2)
        .collect();
    crate::model::clip(&lines.join("\n"), 512)
}

/// Platforms whose context lines are stable enough to group by.
fn uses_context_line(platform: &str) -> bool {
    matches!(platform, "javascript" | "node" | "python" | "php" | "ruby")
}

fn stack_components(stack: &Stacktrace, platform: &str, variant: Variant) -> Components {
    let mut out = Components::default();
    let mut previous: Option<Vec<String>> = None;
    for frame in &stack.frames {
        if variant == Variant::App && frame.in_app != Some(true) {
            continue;
        }
        let platform = frame.platform.as_deref().unwrap_or(platform);
        let values = frame_values(frame, platform);
        // Recursion: the same frame again and again contributes once.
        if values.is_empty() || previous.as_ref() == Some(&values) {
            continue;
        }
        out.0.extend(values.iter().cloned());
        previous = Some(values);
    }
    out
}

fn frame_values(frame: &Frame, platform: &str) -> Vec<String> {
    let mut values = Vec::new();
    if let Some(module) = frame.module.as_deref().filter(|m| !m.is_empty()) {
        values.push(format!("module={module}"));
    } else if let Some(file) = frame
        .filename
        .as_deref()
        .or(frame.abs_path.as_deref())
        .and_then(file_component)
    {
        values.push(format!("filename={file}"));
    }
    if let Some(function) = frame
        .function
        .as_deref()
        .and_then(|f| function_component(f, platform))
    {
        values.push(format!("function={function}"));
    }
    if uses_context_line(platform) {
        if let Some(line) = frame.context_line.as_deref() {
            let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
            if !collapsed.is_empty() && collapsed.len() <= 120 {
                values.push(format!("context={collapsed}"));
            }
        }
    }
    values
}

/// The lower-cased base name of a path or URL; nothing for placeholders like `<anonymous>`.
fn file_component(path: &str) -> Option<String> {
    if path.starts_with('<') || path.contains("[native code]") {
        return None;
    }
    let path = path.split(['?', '#']).next().unwrap_or(path);
    let base = path.rsplit(['/', '\\']).next().unwrap_or(path);
    (!base.is_empty()).then(|| base.to_ascii_lowercase())
}

/// Function names without the noise that changes between builds: JS keeps the last `.` segment, Ruby's
/// `block in x` is `x`, anonymous placeholders contribute nothing.
fn function_component(function: &str, platform: &str) -> Option<String> {
    let f = function.trim();
    if f.is_empty() || f == "?" || f == "<anonymous>" || f.starts_with("lambda$") {
        return None;
    }
    let f = match platform {
        "javascript" | "node" => f.rsplit('.').next().unwrap_or(f),
        "ruby" => f
            .trim_start_matches("block in ")
            .trim_start_matches("rescue in "),
        _ => f,
    };
    Some(f.to_owned())
}

/// Where it happened: the transaction name when the SDK set one (what Sentry shows today), else the
/// top in-app frame (or top frame) as `module in function`.
fn culprit(event: &Event) -> Option<String> {
    if let Some(tx) = &event.transaction {
        return Some(tx.clone());
    }
    let frames = &event.main_stacktrace()?.frames;
    let frame = frames
        .iter()
        .rev()
        .find(|f| f.in_app == Some(true))
        .or(frames.last())?;
    let place = frame
        .module
        .clone()
        .or_else(|| frame.filename.clone())
        .or_else(|| frame.abs_path.clone());
    match (place, &frame.function) {
        (Some(place), Some(function)) => Some(format!("{place} in {function}")),
        (Some(place), None) => Some(place),
        (None, Some(function)) => Some(function.clone()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests;
