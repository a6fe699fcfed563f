//! Whether an alert goes out and where, from the project's [`AlertRule`] and the issue's mute: decided
//! where alerts are decided (the processor's notifier, in `splat serve` and in the Lambda processor), so
//! that a sender (the notify function) only formats and sends to the destinations the alert names.

use super::{Alert, AlertKind};
use crate::store::AlertRule;

/// Sentry's levels, lowest first.
pub const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "fatal"];

/// Where a level stands among [`LEVELS`]; an unknown one counts as `error` (what SDKs default to).
pub fn level_rank(level: &str) -> usize {
    match level.to_ascii_lowercase().as_str() {
        "debug" | "trace" => 0,
        "info" | "log" => 1,
        "warning" | "warn" => 2,
        "fatal" | "critical" => 4,
        _ => 3,
    }
}

/// What becomes of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Send it, to these destinations (`None`: every one).
    Send(Option<Vec<String>>),
    /// Hold it back, for this reason (logged).
    Skip(&'static str),
}

/// Applies the rule and the mute to an alert. A digest or a test alert is about the project, not one
/// issue: it goes to the rule's destinations whatever the filters say.
pub fn decide(rule: &AlertRule, muted: bool, alert: &Alert) -> Decision {
    let kind_on = match alert.kind {
        AlertKind::Created => rule.new,
        AlertKind::Regressed => rule.regressed,
        AlertKind::Burst { .. } => rule.burst,
        AlertKind::Digest { .. } | AlertKind::Test => {
            return Decision::Send(rule.destinations.clone())
        }
    };
    if muted {
        return Decision::Skip("the issue's alerts are muted");
    }
    if !kind_on {
        return Decision::Skip("the project's rule leaves this kind of alert out");
    }
    if level_rank(&alert.issue.level) < level_rank(&rule.min_level) {
        return Decision::Skip("below the project's minimum level");
    }
    if !rule.environments.is_empty()
        && !alert
            .environment
            .as_ref()
            .is_some_and(|env| rule.environments.contains(env))
    {
        return Decision::Skip("not in one of the project's alerting environments");
    }
    Decision::Send(rule.destinations.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::alert;

    #[test]
    fn the_default_rule_sends_everything_everywhere() {
        let rule = AlertRule::default();
        for kind in [
            AlertKind::Created,
            AlertKind::Regressed,
            AlertKind::Burst { events: 5, hour: 0 },
        ] {
            let mut a = alert(kind, "x");
            a.issue.level = "debug".into();
            a.environment = None;
            assert_eq!(decide(&rule, false, &a), Decision::Send(None));
        }
    }

    #[test]
    fn kinds_levels_environments_and_mutes_filter() {
        let rule = AlertRule {
            regressed: false,
            min_level: "error".into(),
            environments: vec!["production".into()],
            destinations: Some(vec!["slack".into()]),
            ..AlertRule::default()
        };
        let created = alert(AlertKind::Created, "x");
        assert_eq!(
            decide(&rule, false, &created),
            Decision::Send(Some(vec!["slack".into()]))
        );
        assert!(matches!(
            decide(&rule, true, &created),
            Decision::Skip(why) if why.contains("muted")
        ));
        assert!(matches!(
            decide(&rule, false, &alert(AlertKind::Regressed, "x")),
            Decision::Skip(_)
        ));
        let mut warning = created.clone();
        warning.issue.level = "warning".into();
        assert!(matches!(decide(&rule, false, &warning), Decision::Skip(_)));
        let mut fatal = created.clone();
        fatal.issue.level = "fatal".into();
        assert!(matches!(decide(&rule, false, &fatal), Decision::Send(_)));
        for env in [Some("staging"), None] {
            let mut other = created.clone();
            other.environment = env.map(str::to_owned);
            assert!(matches!(decide(&rule, false, &other), Decision::Skip(_)));
        }
        // A test alert ignores the filters (and the mute) but keeps the destinations.
        assert_eq!(
            decide(&rule, true, &alert(AlertKind::Test, "x")),
            Decision::Send(Some(vec!["slack".into()]))
        );
    }
}
