//! What a chat's incoming webhook is sent: Slack (Block Kit `blocks` with a fallback `text`), Discord
//! (`content` and `embeds`), Microsoft Teams (a Workflows webhook taking an Adaptive Card attachment) and
//! Google Chat (`text` and `cardsV2`); anything else gets Splat's own JSON ([`message::webhook_json`]).
//! The format is read from the URL's host unless it is named ([`Format::detect`], [`Format::parse`]).
//!
//! Every text here comes from events, so from anyone holding a DSN: none of it may ping a channel.
//! Slack's `<!channel>` is escaped as Slack documents (`&lt;`), Discord's mentions are turned off with
//! `allowed_mentions`, Google Chat's `<users/all>` cannot form (its angle brackets are replaced).

use serde_json::{json, Value};

use super::message::{self, Fact};
use super::Alert;

/// The shape a webhook's body takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// Splat's own JSON: `{event, issue, project, url, …}`.
    Json,
    Slack,
    Discord,
    Teams,
    GoogleChat,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Self::Json,
        Self::Slack,
        Self::Discord,
        Self::Teams,
        Self::GoogleChat,
    ];

    /// The name used in settings and the environment (`slack:https://…`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Teams => "teams",
            Self::GoogleChat => "google_chat",
        }
    }

    /// A format named by a person: its name, or a common other spelling.
    pub fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase().replace('-', "_");
        Some(match name.as_str() {
            "json" | "generic" | "webhook" => Self::Json,
            "slack" => Self::Slack,
            "discord" => Self::Discord,
            "teams" | "msteams" | "microsoft_teams" => Self::Teams,
            "google_chat" | "googlechat" | "gchat" => Self::GoogleChat,
            _ => return None,
        })
    }

    /// The format a URL's host calls for: Slack's `hooks.slack.com`, Discord's `/api/webhooks/` on
    /// discord.com or discordapp.com, Teams Workflows (`*.webhook.office.com`, `*.logic.azure.com`, Power
    /// Automate's hosts), Google Chat's `chat.googleapis.com`; anything else, Splat's own JSON.
    pub fn detect(url: &str) -> Self {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = host
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if host == "hooks.slack.com" {
            Self::Slack
        } else if (under("discord.com") || under("discordapp.com"))
            && path.starts_with("/api/webhooks/")
        {
            Self::Discord
        } else if under("webhook.office.com")
            || under("logic.azure.com")
            || under("powerautomate.com")
            || under("powerplatform.com")
            || host == "flow.microsoft.com"
            || path.contains("/powerautomate/")
        {
            Self::Teams
        } else if host == "chat.googleapis.com" {
            Self::GoogleChat
        } else {
            Self::Json
        }
    }

    /// The body for `alert` in this format.
    pub fn body(self, alert: &Alert) -> Value {
        match self {
            Self::Json => message::webhook_json(alert),
            Self::Slack => slack(alert),
            Self::Discord => discord(alert),
            Self::Teams => teams(alert),
            Self::GoogleChat => google_chat(alert),
        }
    }
}

/// Slack: a header line linking to the issue, the facts as section fields, an "Open issue" button; `text`
/// is the notification's plain fallback.
fn slack(alert: &Alert) -> Value {
    let esc = escape_markup;
    let mut head = format!(
        "*{}* · <{}|{}>",
        esc(&message::what_happened(alert)),
        esc(&alert.url),
        esc(&message::short_title(alert))
    );
    if let Some(culprit) = message::culprit(alert) {
        head.push_str(&format!("\n`{}`", esc(&culprit).replace('`', "'")));
    }
    // Slack allows ten fields per section.
    let fields: Vec<Value> = message::facts(alert)
        .iter()
        .take(10)
        .map(|Fact(name, value)| {
            json!({"type": "mrkdwn", "text": format!("*{name}*\n{}", esc(value))})
        })
        .collect();
    json!({
        "text": esc(&message::summary(alert)),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": head}},
            {"type": "section", "fields": fields},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": message::link_label(alert)},
                "url": alert.url,
            }]},
        ],
    })
}

/// Discord: a short `content` line and one embed (title linking to the issue, the facts inline, a colour
/// per kind); mentions are off, whatever the text says.
fn discord(alert: &Alert) -> Value {
    let fields: Vec<Value> = message::facts(alert)
        .iter()
        .map(|Fact(name, value)| json!({"name": name, "value": cut(value, 1024), "inline": true}))
        .collect();
    let mut embed = json!({
        "title": cut(&message::short_title(alert), 256),
        "url": alert.url,
        "color": colour(alert),
        "fields": fields,
        "timestamp": message::time(alert.issue.last_seen),
    });
    if let Some(culprit) = message::culprit(alert) {
        embed["description"] = json!(cut(&culprit, 4096));
    }
    json!({
        "content": cut(&message::summary(alert), 2000),
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

/// Microsoft Teams through a Workflows webhook ("Post to a channel when a webhook request is received"):
/// a message whose one attachment is an Adaptive Card with the facts and an "Open issue" action.
fn teams(alert: &Alert) -> Value {
    let facts: Vec<Value> = message::facts(alert)
        .iter()
        .map(|Fact(name, value)| json!({"title": name, "value": value}))
        .collect();
    let mut body = vec![
        json!({"type": "TextBlock", "text": message::what_happened(alert), "weight": "Bolder", "size": "Medium", "wrap": true}),
        json!({"type": "TextBlock", "text": message::short_title(alert), "wrap": true}),
    ];
    if let Some(culprit) = message::culprit(alert) {
        body.push(json!({"type": "TextBlock", "text": culprit, "isSubtle": true, "wrap": true}));
    }
    body.push(json!({"type": "FactSet", "facts": facts}));
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": [{"type": "Action.OpenUrl", "title": message::link_label(alert), "url": alert.url}],
            },
        }],
    })
}

/// Google Chat: a plain `text` line (what notifications show) and a card (`cardsV2`) with the facts and
/// a button to the issue.
fn google_chat(alert: &Alert) -> Value {
    // Card texts are a small HTML subset: escaped. The plain text has no escape, so no angle brackets.
    let html = escape_markup;
    let plain = |s: &str| s.replace('<', "‹").replace('>', "›");
    let mut widgets: Vec<Value> = vec![json!({"decoratedText": {
        "topLabel": "Issue", "text": html(&message::short_title(alert)), "wrapText": true,
    }})];
    if let Some(culprit) = message::culprit(alert) {
        widgets.push(json!({"decoratedText": {"topLabel": "Culprit", "text": html(&culprit), "wrapText": true}}));
    }
    for Fact(name, value) in message::facts(alert) {
        widgets.push(
            json!({"decoratedText": {"topLabel": name, "text": html(&value), "wrapText": true}}),
        );
    }
    widgets.push(json!({"buttonList": {"buttons": [{
        "text": message::link_label(alert),
        "onClick": {"openLink": {"url": alert.url}},
    }]}}));
    json!({
        "text": format!("{}\n{}", plain(&message::summary(alert)), alert.url),
        "cardsV2": [{
            "cardId": "splat-alert",
            "card": {
                "header": {"title": plain(&message::what_happened(alert)), "subtitle": plain(&alert.project.name)},
                "sections": [{"widgets": widgets}],
            },
        }],
    })
}

/// `&`, `<` and `>` as entities: what Slack's mrkdwn and Google Chat's card HTML both take literally.
fn escape_markup(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Red for new, orange for regressed, purple for bursts, grey otherwise.
fn colour(alert: &Alert) -> u32 {
    use super::AlertKind;
    match alert.kind {
        AlertKind::Created => 0xE0_3E_2F,
        AlertKind::Regressed => 0xF5_9E_0B,
        AlertKind::Burst { .. } => 0x8B_5C_F6,
        AlertKind::Digest { .. } | AlertKind::Test => 0x6B_72_80,
    }
}

/// At most `max` characters (the platforms refuse longer fields), cut at a character boundary.
fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::alert;
    use crate::notify::AlertKind;

    #[test]
    fn the_format_follows_the_host() {
        for (url, format) in [
            ("https://hooks.slack.com/services/T0/B0/XXXX", Format::Slack),
            ("https://discord.com/api/webhooks/1/abc", Format::Discord),
            ("https://ptb.discordapp.com/api/webhooks/1/abc", Format::Discord),
            ("https://discord.com/channels/1", Format::Json),
            ("https://acme.webhook.office.com/webhookb2/x", Format::Teams),
            ("https://prod-11.westus.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke?sig=s", Format::Teams),
            ("https://default1.environment.api.powerplatform.com/powerautomate/automations/direct/x", Format::Teams),
            ("https://chat.googleapis.com/v1/spaces/AAA/messages?key=k&token=t", Format::GoogleChat),
            ("https://user:pw@HOOKS.SLACK.COM:443/services/x", Format::Slack),
            ("https://hooks.slack.com.evil.example/services/x", Format::Json),
            ("http://127.0.0.1:9000/hook", Format::Json),
        ] {
            assert_eq!(Format::detect(url), format, "{url}");
        }
        assert_eq!(Format::parse("Google-Chat"), Some(Format::GoogleChat));
        assert_eq!(Format::parse("msteams"), Some(Format::Teams));
        assert_eq!(Format::parse("irc"), None);
        for format in Format::ALL {
            assert_eq!(Format::parse(format.as_str()), Some(format));
        }
    }

    #[test]
    fn each_platform_gets_its_documented_shape() {
        let a = alert(AlertKind::Created, "ValueError: bad input");
        let slack = Format::Slack.body(&a);
        assert!(slack["text"]
            .as_str()
            .unwrap()
            .contains("ValueError: bad input"));
        assert_eq!(slack["blocks"][0]["type"], "section");
        assert_eq!(slack["blocks"][2]["elements"][0]["url"], a.url);
        let discord = Format::Discord.body(&a);
        assert!(discord["content"]
            .as_str()
            .unwrap()
            .starts_with("New issue"));
        assert_eq!(discord["embeds"][0]["url"], a.url);
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        let teams = Format::Teams.body(&a);
        assert_eq!(teams["type"], "message");
        let card = &teams["attachments"][0];
        assert_eq!(
            card["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        assert_eq!(card["content"]["type"], "AdaptiveCard");
        assert_eq!(card["content"]["actions"][0]["url"], a.url);
        let chat = Format::GoogleChat.body(&a);
        assert!(chat["text"].as_str().unwrap().ends_with(&a.url));
        assert_eq!(chat["cardsV2"][0]["cardId"], "splat-alert");
        // Every chat names the project, level, environment, release and count.
        for body in [&slack, &discord, &teams, &chat] {
            let text = body.to_string();
            for part in ["Shop API", "error", "production", "1.2.0", "Events", "7"] {
                assert!(text.contains(part), "{part} missing from {text}");
            }
        }
    }

    #[test]
    fn event_text_cannot_ping_a_channel() {
        let a = alert(AlertKind::Created, "<!channel> <users/all> @everyone & co");
        let slack = Format::Slack.body(&a).to_string();
        assert!(!slack.contains("<!channel>") && slack.contains("&lt;!channel&gt;"));
        let chat = Format::GoogleChat.body(&a);
        assert!(!chat["text"].as_str().unwrap().contains("<users/all>"));
        assert!(!chat.to_string().contains("<users/all>"));
        assert_eq!(
            Format::Discord.body(&a)["allowed_mentions"],
            json!({"parse": []})
        );
    }

    #[test]
    fn long_texts_fit_the_platforms_limits() {
        let chars = |v: &Value| v.as_str().unwrap().chars().count();
        let mut a = alert(AlertKind::Created, &"x".repeat(5000));
        a.issue.culprit = Some("y".repeat(9000));
        let discord = Format::Discord.body(&a);
        assert!(chars(&discord["embeds"][0]["title"]) <= 256);
        assert!(chars(&discord["embeds"][0]["description"]) <= 4096);
        let slack = Format::Slack.body(&a);
        assert!(chars(&slack["blocks"][0]["text"]["text"]) <= 3000);
    }
}
