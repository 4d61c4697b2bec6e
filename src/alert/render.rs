//! Text rendering of alerts: the SNS subject and the email body.

use std::borrow::Cow;
use std::fmt::Write as _;

use super::Alert;
use crate::rules::Rule;

/// SNS subjects must be under 100 characters.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// The body bound: SNS allows 256 KiB per message (and per PublishBatch request); this
/// leaves room for the subject and message attributes.
pub const MAX_BODY_BYTES: usize = 240 * 1024;

/// Appended where the record was cut to fit [`MAX_BODY_BYTES`].
pub const TRUNCATION_MARKER: &str = "[... record truncated to fit the SNS message size limit; see the full event in CloudTrail ...]";

/// The longest a single summary value may be (long error messages, user agents).
const MAX_FIELD_CHARS: usize = 1_000;

/// One printable ASCII line: SNS subjects allow nothing else.
fn ascii_line(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        })
        .collect()
}

/// `text` cut to at most `max_chars` characters, the cut marked with `...`.
fn shorten(text: &str, max_chars: usize) -> Cow<'_, str> {
    // No more bytes than the limit: no more characters either, and nothing to count.
    if text.len() <= max_chars || text.chars().count() <= max_chars {
        return Cow::Borrowed(text);
    }
    if text.is_ascii() {
        let cut = &text[..max_chars.saturating_sub(3)];
        return Cow::Owned(format!("{cut}..."));
    }
    let cut: String = text.chars().take(max_chars.saturating_sub(3)).collect();
    Cow::Owned(format!("{cut}..."))
}

pub(super) fn subject(alert: &Alert) -> String {
    let event = &alert.event;
    let who = match &alert.correlation {
        Some(c) => format!("{} in {} for {}", c.count, c.timespan, values(&c.group)),
        None => event.actor.clone(),
    };
    let mut subject = format!(
        "[{}] {}: {}",
        alert.severity.as_str().to_uppercase(),
        alert.title,
        who
    );
    if !event.account_id.is_empty() {
        let _ = write!(subject, " in {}", account(alert));
    }
    if !event.region.is_empty() {
        let _ = write!(subject, " ({})", event.region);
    }
    shorten(&ascii_line(&subject), MAX_SUBJECT_CHARS).into_owned()
}

/// The account as people know it: `prod (111122223333)` when the map names it.
fn account(alert: &Alert) -> String {
    match &alert.account_name {
        Some(name) => format!("{name} ({})", alert.event.account_id),
        None => alert.event.account_id.clone(),
    }
}

/// `field=value, ...` (values only when there is one field).
fn values(pairs: &[(String, String)]) -> String {
    match pairs {
        [] => "all events".to_owned(),
        [(_, value)] => value.clone(),
        _ => pairs
            .iter()
            .map(|(field, value)| format!("{field}={value}"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn pairs(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(field, value)| format!("{field}={value}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome(alert: &Alert) -> String {
    let event = &alert.event;
    let call = format!("{} on {}", event.event_name, event.event_source);
    // A failed console sign-in has no errorCode: CloudTrail says so in the response.
    let sign_in_failed = alert
        .record
        .get("responseElements")
        .and_then(|response| response.get("ConsoleLogin"))
        .and_then(serde_json::Value::as_str)
        == Some("Failure");
    match (&event.error_code, &event.error_message) {
        (Some(code), _) => format!("{call} failed ({code})"),
        (None, Some(message)) if sign_in_failed => format!("{call} failed ({message})"),
        (None, None) if sign_in_failed => format!("{call} failed"),
        _ => format!("{call} succeeded"),
    }
}

/// Wraps each line of `text` at word boundaries to `width` columns (rule descriptions
/// are often one long folded line).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width);
    for (index, line) in text.lines().enumerate() {
        if index > 0 {
            out.push('\n');
        }
        let mut column = 0;
        for word in line.split(' ') {
            if column > 0 && column + 1 + word.chars().count() > width {
                out.push('\n');
                column = 0;
            } else if column > 0 {
                out.push(' ');
                column += 1;
            }
            out.push_str(word);
            column += word.chars().count();
        }
    }
    out
}

fn section(body: &mut String, heading: &str, text: &str) {
    let _ = write!(
        body,
        "\n{heading}\n{}\n{}\n",
        "-".repeat(heading.len()),
        text.trim_end()
    );
}

/// The rule's prose as the body shows it: why it matters, what to do, known false
/// positives. The same for every alert of the rule, so rendered once per rule.
pub(super) fn rule_prose(rule: &Rule) -> String {
    let mut prose = String::new();
    if let Some(description) = &rule.description {
        section(&mut prose, "Why it matters", &wrap(description, 78));
    }
    if let Some(runbook) = &rule.runbook {
        section(&mut prose, "What to do", runbook);
    }
    if !rule.falsepositives.is_empty() {
        let list: Vec<String> = rule
            .falsepositives
            .iter()
            .map(|f| format!("- {f}"))
            .collect();
        section(&mut prose, "Known false positives", &list.join("\n"));
    }
    prose
}

/// The summary part of the body: everything but the record.
fn summary(alert: &Alert) -> String {
    let event = &alert.event;
    // Room for the summary lines and the rule's prose without growing.
    let mut body = String::with_capacity(1024 + alert.prose.len());
    let _ = writeln!(
        body,
        "[{}] {}",
        alert.severity.as_str().to_uppercase(),
        alert.title
    );
    let _ = writeln!(body);
    let mut line = |label: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(body, "{label:<14}{}", shorten(value, MAX_FIELD_CHARS));
        }
    };
    if let Some(c) = &alert.correlation {
        line(
            "Correlation:",
            &format!(
                "{} {} of {} within {}",
                c.count,
                match c.kind.as_str() {
                    "value_count" => "distinct values",
                    "temporal" => "rules matched",
                    _ => "matching events",
                },
                c.rules.join(", "),
                c.timespan
            ),
        );
        line("Group:", &pairs(&c.group));
        line("Last event:", &outcome(alert));
    } else {
        line("What:", &outcome(alert));
    }
    if let Some(seen) = &alert.first_seen {
        line(
            "First seen:",
            &format!(
                "{} (not seen in the last {})",
                pairs(&seen.values),
                seen.history
            ),
        );
    }
    if let Some(dedup) = &alert.dedup {
        let key = if dedup.key.is_empty() {
            "this rule".to_owned()
        } else {
            pairs(&dedup.key)
        };
        line(
            "Dedup:",
            &format!(
                "first alert for {key} in {}; repeats within it are counted, not sent",
                dedup.window
            ),
        );
        if dedup.suppressed_before > 0 {
            line(
                "Suppressed:",
                &format!(
                    "{} similar alert(s) in the previous {} window",
                    dedup.suppressed_before, dedup.window
                ),
            );
        }
    }
    let who = match &event.actor_arn {
        Some(arn) => format!("{} ({}, {arn})", event.actor, event.actor_type),
        None if event.actor_type.is_empty() => event.actor.clone(),
        None => format!("{} ({})", event.actor, event.actor_type),
    };
    line("Who:", &who);
    line("Account:", &account(alert));
    line("Region:", &event.region);
    line("Source IP:", &event.source_ip);
    line(
        "User agent:",
        event.user_agent.as_deref().unwrap_or_default(),
    );
    line("When:", &event.event_time);
    if let Some(code) = &event.error_code {
        let error = match &event.error_message {
            Some(message) => format!("{code}: {message}"),
            None => code.clone(),
        };
        line("Error:", &error);
    }
    line("Event ID:", &event.event_id);
    let rule = match &alert.rule_id {
        Some(id) => format!("{} ({id})", alert.rule),
        None => alert.rule.clone(),
    };
    line("Rule:", &rule);
    line("Tags:", &alert.tags.join(", "));
    body.push_str(&alert.prose);
    if let Some(url) = alert.console_url() {
        section(&mut body, "View in the CloudTrail console", &url);
    }
    if let Some(c) = &alert.correlation {
        let ids: Vec<String> = c
            .event_ids
            .iter()
            .map(|id| format!("- {}", shorten(id, 64)))
            .collect();
        section(&mut body, "Events in the window (eventID)", &ids.join("\n"));
    }
    body
}

pub(super) fn chatbot_notification(alert: &Alert) -> serde_json::Value {
    let event = &alert.event;
    let mut description = String::new();
    // Record values are text, not markup: Slack reads `<url|text>` as a link.
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut line = |label: &str, value: &str| {
        if !value.is_empty() {
            let _ = writeln!(description, "*{label}* {}", escape(&shorten(value, 200)));
        }
    };
    match &alert.correlation {
        Some(c) => {
            line(
                "Correlation:",
                &format!("{} in {} ({})", c.count, c.timespan, c.rules.join(", ")),
            );
            line("Group:", &pairs(&c.group));
        }
        None => line("What:", &outcome(alert)),
    }
    line("Who:", &event.actor);
    line("Account:", &account(alert));
    line("Region:", &event.region);
    line("Source IP:", &event.source_ip);
    line("When:", &event.event_time);
    line("Event ID:", &event.event_id);
    line("Rule:", &alert.rule);
    if let Some(dedup) = &alert.dedup
        && dedup.suppressed_before > 0
    {
        line(
            "Suppressed:",
            &format!(
                "{} similar in the previous {}",
                dedup.suppressed_before, dedup.window
            ),
        );
    }
    if let Some(url) = alert.console_url() {
        let _ = writeln!(description, "<{url}|View in CloudTrail>");
    }
    let next_steps: Vec<String> = alert
        .runbook
        .as_deref()
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(5)
        .map(|l| shorten(l, 300).into_owned())
        .collect();
    serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "id": alert.dedup_key(),
        "content": {
            "textType": "client-markdown",
            "title": shorten(&format!("[{}] {}", alert.severity.as_str().to_uppercase(), alert.title), 250),
            "description": description,
            "nextSteps": next_steps,
            "keywords": [alert.severity.as_str(), alert.rule.as_str()],
        },
        "metadata": {
            "threadId": alert.rule,
            "summary": subject(alert),
            "eventType": event.event_name,
        },
    })
}

/// Cuts `text` to at most `max` bytes on a char boundary.
fn cut_to_bytes(text: &str, max: usize) -> &str {
    let mut end = max.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

pub(super) fn text_body(alert: &Alert, max_bytes: usize) -> String {
    let mut body = summary(alert);
    let record = alert.record.pretty();
    let heading = "\nEvent record\n------------\n";
    let room = max_bytes.saturating_sub(body.len() + heading.len() + 1);
    body.reserve(heading.len() + record.len().min(room) + TRUNCATION_MARKER.len() + 2);
    body.push_str(heading);
    if record.len() <= room {
        body.push_str(&record);
        body.push('\n');
    } else {
        let keep = room.saturating_sub(TRUNCATION_MARKER.len() + 1);
        body.push_str(cut_to_bytes(&record, keep));
        body.push('\n');
        body.push_str(TRUNCATION_MARKER);
        body.push('\n');
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_line_replaces_newlines_and_non_ascii() {
        assert_eq!(ascii_line("a\nb\tc é"), "a b c ?");
    }

    #[test]
    fn wrap_breaks_long_lines_at_words_and_keeps_newlines() {
        assert_eq!(wrap("aaa bbb ccc", 7), "aaa bbb\nccc");
        assert_eq!(wrap("a\nb c", 10), "a\nb c");
        assert_eq!(
            wrap("averyveryverylongword x", 5),
            "averyveryverylongword\nx"
        );
    }

    #[test]
    fn shorten_marks_the_cut() {
        assert_eq!(shorten("abcdef", 5), "ab...");
        assert_eq!(shorten("abc", 5), "abc");
        assert_eq!(shorten("éééééé", 5), "éé...", "characters, not bytes");
        assert_eq!(shorten("ééééé", 5), "ééééé");
    }

    #[test]
    fn cut_to_bytes_respects_char_boundaries() {
        assert_eq!(cut_to_bytes("aé", 2), "a");
        assert_eq!(cut_to_bytes("abc", 10), "abc");
    }
}
