//! The pure decisions of stateful alerting: given what the store holds for one key and
//! one match, what to write back and what to do with the match. No I/O, so every rule
//! of the semantics is unit-tested here, and the DynamoDB and memory stores behave the
//! same because they only carry these items.
//!
//! Each decision is idempotent in the event: a redelivered or retried event that opened
//! a dedup window, fired a correlation or was first seen gets the same answer again (so
//! its alert is re-emitted and the claim decides whether it still needs publishing),
//! and an event already counted is not counted twice by a correlation.

use serde::{Deserialize, Serialize};

/// What to do with one match after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<T> {
    /// Alert (with what the alert should say).
    Alert(T),
    /// Do not alert.
    Quiet,
}

/// A dedup window: who opened it, when, and what was suppressed in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupWindow {
    /// The event that opened the window (and alerted).
    pub opener: String,
    /// Its event time (epoch seconds).
    pub start: i64,
    /// Matches suppressed in this window so far.
    pub suppressed: u64,
    /// Matches suppressed in the window before, reported by the opener's alert.
    pub carried: u64,
    /// Earlier windows' openers and what they carried (the newest last, at most
    /// [`MAX_REMEMBERED`]): a retried batch that opened several windows alerts again for
    /// each of them.
    #[serde(default)]
    pub earlier: Vec<(String, u64)>,
    /// The latest suppressed events (at most [`MAX_REMEMBERED`]): a retried batch does
    /// not count them again.
    #[serde(default)]
    pub recent: Vec<String>,
}

/// Earlier window openers, correlation firings and first events remembered per item, so
/// a retried batch that opened, fired or saw new several times gets each alert again.
pub const MAX_REMEMBERED: usize = 32;

fn remember<T>(list: &mut Vec<T>, item: T) {
    list.push(item);
    if list.len() > MAX_REMEMBERED {
        list.remove(0);
    }
}

/// Dedup: the first match per key alerts; repeats within `window` seconds of it are
/// suppressed and counted; the first match after the window alerts and carries the
/// count. Returns the item to write (if any) and, for an alert, the count carried.
pub fn dedup(
    current: Option<&DedupWindow>,
    event: &str,
    time: i64,
    window: i64,
) -> (Option<DedupWindow>, Decision<u64>) {
    let open = |carried, earlier| DedupWindow {
        opener: event.to_owned(),
        start: time,
        suppressed: 0,
        carried,
        earlier,
        recent: Vec::new(),
    };
    match current {
        None => (Some(open(0, Vec::new())), Decision::Alert(0)),
        Some(w) if w.opener == event => (None, Decision::Alert(w.carried)),
        Some(w) if let Some((_, carried)) = w.earlier.iter().find(|(id, _)| id == event) => {
            (None, Decision::Alert(*carried))
        }
        Some(w) if time >= w.start.saturating_add(window) => {
            let mut earlier = w.earlier.clone();
            remember(&mut earlier, (w.opener.clone(), w.carried));
            (
                Some(open(w.suppressed, earlier)),
                Decision::Alert(w.suppressed),
            )
        }
        // A repeat already counted, or one older than the window (late, or of an earlier
        // window): suppressed, not counted again.
        Some(w) if time < w.start || w.recent.iter().any(|e| e == event) => (None, Decision::Quiet),
        Some(w) => {
            let mut next = w.clone();
            next.suppressed += 1;
            remember(&mut next.recent, event.to_owned());
            (Some(next), Decision::Quiet)
        }
    }
}

/// A combination of values seen by a first-seen rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    /// The event that was first (and alerted, unless learning).
    pub first: String,
    /// When the combination was (last) first seen.
    pub first_at: i64,
    /// When it was last seen (refreshed at most every [`SEEN_REFRESH_SECS`]).
    pub last_at: i64,
    /// Earlier first events (the newest last, at most [`MAX_REMEMBERED`]).
    #[serde(default)]
    pub earlier: Vec<String>,
}

/// How often `last_at` is refreshed: a first-seen rule's history is exact to this.
pub const SEEN_REFRESH_SECS: i64 = 3600;

/// First-seen: a combination not seen within `history` seconds is new.
pub fn first_seen(
    current: Option<&Seen>,
    event: &str,
    time: i64,
    history: i64,
) -> (Option<Seen>, Decision<()>) {
    let new = |earlier| Seen {
        first: event.to_owned(),
        first_at: time,
        last_at: time,
        earlier,
    };
    match current {
        None => (Some(new(Vec::new())), Decision::Alert(())),
        Some(s) if s.first == event || s.earlier.iter().any(|e| e == event) => {
            (None, Decision::Alert(()))
        }
        Some(s) if time > s.last_at.saturating_add(history) => {
            let mut earlier = s.earlier.clone();
            remember(&mut earlier, s.first.clone());
            (Some(new(earlier)), Decision::Alert(()))
        }
        Some(s) if time > s.last_at.saturating_add(SEEN_REFRESH_SECS.min(history)) => (
            Some(Seen {
                last_at: time,
                ..s.clone()
            }),
            Decision::Quiet,
        ),
        Some(_) => (None, Decision::Quiet),
    }
}

/// When a first-seen rule started learning (the first matching event's time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Learning {
    /// Epoch seconds.
    pub started: i64,
}

/// One event a correlation counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted {
    /// Its `eventID`.
    pub id: String,
    /// Its event time.
    pub t: i64,
    /// What it counts as: the value (`value_count`), the rule (`temporal`), or "".
    pub tag: String,
}

/// A correlation firing, kept so a retry of the firing event fires the same again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fired {
    /// The event that made it fire.
    pub id: String,
    /// The count at that moment.
    pub count: u64,
    /// The events of the window.
    pub ids: Vec<String>,
}

/// One group's correlation window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Events counted, within one timespan of the newest.
    pub events: Vec<Counted>,
    /// Nothing is counted before this time: the window that fired last ends here.
    pub quiet_until: i64,
    /// The latest firings (the newest last, at most [`MAX_REMEMBERED`]).
    #[serde(default)]
    pub fired: Vec<Fired>,
}

/// At most this many events are kept per group (the oldest go first).
pub const MAX_COUNTED: usize = 1_000;

/// At most this many event ids are listed in an alert.
pub const MAX_LISTED: usize = 50;

/// How a correlation counts the events of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// Every event.
    Events,
    /// Distinct tags (values, or rules for temporal).
    DistinctTags,
}

/// How late (beyond one timespan) an event may arrive and still be counted with the
/// events it happened among: CloudTrail reaches CloudWatch Logs minutes late.
pub const ALLOWED_LATENESS_SECS: i64 = 3_600;

/// A correlation: adds the event to its group's window, and fires once when the count
/// within some window `[start, start + span)` holding the event reaches `at_least`
/// (events arrive out of order, so that window may end after this one). The events of
/// the firing window are consumed and nothing more is counted until that window is
/// over: one alert per window. With [`Counting::DistinctTags`] a tag is kept once (its
/// newest event), so repeats of one value neither crowd out the others nor grow the item.
pub fn correlate(
    current: Option<&Window>,
    event: Counted,
    span: i64,
    counting: Counting,
    at_least: u64,
) -> (Option<Window>, Decision<Fired>) {
    let mut window = current.cloned().unwrap_or_default();
    if let Some(fired) = window.fired.iter().find(|f| f.id == event.id) {
        return (None, Decision::Alert(fired.clone()));
    }
    if event.t < window.quiet_until
        || window
            .events
            .iter()
            .any(|e| e.id == event.id && e.tag == event.tag)
    {
        return (None, Decision::Quiet);
    }
    let (id, time) = (event.id.clone(), event.t);
    let same_tag = (counting == Counting::DistinctTags)
        .then(|| window.events.iter().position(|e| e.tag == event.tag))
        .flatten();
    match same_tag {
        Some(index) if window.events[index].t >= time => return (None, Decision::Quiet),
        Some(index) => window.events[index] = event,
        None => window.events.push(event),
    }
    let newest = window.events.iter().map(|e| e.t).max().unwrap_or(time);
    let oldest_kept = newest
        .saturating_sub(span)
        .saturating_sub(ALLOWED_LATENESS_SECS);
    window.events.retain(|e| e.t >= oldest_kept);
    if window.events.len() > MAX_COUNTED {
        window.events.sort_by_key(|e| e.t);
        let excess = window.events.len() - MAX_COUNTED;
        window.events.drain(..excess);
    }
    let mut near: Vec<&Counted> = window
        .events
        .iter()
        .filter(|e| e.t > time.saturating_sub(span) && e.t < time.saturating_add(span))
        .collect();
    near.sort_by_key(|e| e.t);
    // Windows start at an event at or before this one and must hold it; slide the end.
    let mut best: Option<(u64, usize, usize)> = None;
    let mut tags: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut end = 0;
    for start in 0..near.len() {
        if near[start].t > time {
            break;
        }
        let limit = near[start].t.saturating_add(span);
        while end < near.len() && near[end].t < limit {
            *tags.entry(near[end].tag.as_str()).or_insert(0) += 1;
            end += 1;
        }
        if limit > time {
            let count = match counting {
                Counting::Events => (end - start) as u64,
                Counting::DistinctTags => tags.len() as u64,
            };
            if best.is_none_or(|(c, _, _)| count > c) {
                best = Some((count, start, end));
            }
        }
        if let Some(n) = tags.get_mut(near[start].tag.as_str()) {
            *n -= 1;
            if *n == 0 {
                tags.remove(near[start].tag.as_str());
            }
        }
    }
    let Some((count, first, last)) = best.filter(|(count, _, _)| *count >= at_least) else {
        return (Some(window), Decision::Quiet);
    };
    let in_window = &near[first..last];
    let mut ids: Vec<String> = Vec::new();
    for e in in_window {
        if ids.len() < MAX_LISTED && !ids.contains(&e.id) {
            ids.push(e.id.clone());
        }
    }
    let start_time = in_window.first().map_or(time, |e| e.t);
    let last_time = in_window.last().map_or(time, |e| e.t);
    let fired = Fired { id, count, ids };
    window.quiet_until = start_time.saturating_add(span);
    window.events.retain(|e| e.t > last_time);
    remember(&mut window.fired, fired.clone());
    (Some(window), Decision::Alert(fired))
}

/// An alert's claim: published, or being published until the lease runs out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimItem {
    /// True once the transport confirmed the alert.
    pub published: bool,
    /// Until when (epoch milliseconds) the claimer may publish it alone.
    pub lease_until_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(id: &str, t: i64) -> Counted {
        Counted {
            id: id.into(),
            t,
            tag: String::new(),
        }
    }

    /// Feeds events through `correlate`, keeping the written state.
    fn run(events: &[(&str, i64)], at_least: u64) -> Vec<Option<u64>> {
        let mut state: Option<Window> = None;
        events
            .iter()
            .map(|(id, t)| {
                let (write, decision) = correlate(
                    state.as_ref(),
                    counted(id, *t),
                    300,
                    Counting::Events,
                    at_least,
                );
                if write.is_some() {
                    state = write;
                }
                match decision {
                    Decision::Alert(fired) => Some(fired.count),
                    Decision::Quiet => None,
                }
            })
            .collect()
    }

    #[test]
    fn a_threshold_fires_once_at_the_fifth_event_of_a_window() {
        let events = [
            ("a", 0),
            ("b", 10),
            ("c", 20),
            ("d", 30),
            ("e", 40),
            ("f", 50),
            ("g", 60),
        ];
        let fired = run(&events, 5);
        assert_eq!(fired, [None, None, None, None, Some(5), None, None]);
    }

    #[test]
    fn events_spread_wider_than_the_timespan_never_fire() {
        let events: Vec<(String, i64)> = (0..10).map(|i| (format!("e{i}"), i * 100)).collect();
        let refs: Vec<(&str, i64)> = events.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        assert!(run(&refs, 5).iter().all(Option::is_none));
    }

    #[test]
    fn after_the_fired_window_counting_starts_again() {
        let mut events: Vec<(String, i64)> = (0..5).map(|i| (format!("a{i}"), i)).collect();
        events.extend((0..5).map(|i| (format!("b{i}"), 400 + i)));
        let refs: Vec<(&str, i64)> = events.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let fired = run(&refs, 5);
        assert_eq!(fired.iter().filter(|f| f.is_some()).count(), 2);
        assert_eq!(fired[4], Some(5));
        assert_eq!(fired[9], Some(5));
    }

    #[test]
    fn out_of_order_events_count_on_event_time() {
        let fired = run(&[("e", 40), ("a", 0), ("c", 20), ("b", 10), ("d", 30)], 5);
        assert_eq!(fired, [None, None, None, None, Some(5)]);
    }

    #[test]
    fn a_redelivered_event_is_counted_once_and_a_retried_firing_fires_again() {
        let fired = run(&[("a", 0), ("a", 0), ("b", 1), ("b", 1), ("c", 2)], 3);
        assert_eq!(fired, [None, None, None, None, Some(3)]);
        let mut state = None;
        for (id, t) in [("a", 0), ("b", 1), ("c", 2)] {
            let (write, _) = correlate(state.as_ref(), counted(id, t), 300, Counting::Events, 3);
            state = write.or(state);
        }
        let (write, decision) =
            correlate(state.as_ref(), counted("c", 2), 300, Counting::Events, 3);
        assert!(write.is_none());
        let Decision::Alert(fired) = decision else {
            panic!("the firing event fires again")
        };
        assert_eq!(fired.ids, ["a", "b", "c"]);
    }

    #[test]
    fn distinct_tags_count_values_not_events() {
        let mut state: Option<Window> = None;
        let mut decisions = Vec::new();
        for (id, tag) in [("1", "x"), ("2", "x"), ("3", "y"), ("4", "z")] {
            let event = Counted {
                id: id.into(),
                t: 0,
                tag: tag.into(),
            };
            let (write, decision) = correlate(state.as_ref(), event, 60, Counting::DistinctTags, 3);
            state = write.or(state);
            decisions.push(decision != Decision::Quiet);
        }
        assert_eq!(decisions, [false, false, false, true]);
    }

    #[test]
    fn dedup_alerts_first_suppresses_repeats_and_carries_the_count() {
        let (w, d) = dedup(None, "a", 0, 3600);
        assert_eq!(d, Decision::Alert(0));
        let w = w.unwrap();
        let (w2, d) = dedup(Some(&w), "b", 10, 3600);
        assert_eq!(d, Decision::Quiet);
        let (w3, d) = dedup(w2.as_ref(), "c", 20, 3600);
        assert_eq!(d, Decision::Quiet);
        let w3 = w3.unwrap();
        assert_eq!(w3.suppressed, 2);
        assert_eq!(dedup(Some(&w3), "a", 0, 3600), (None, Decision::Alert(0)));
        let (w4, d) = dedup(Some(&w3), "d", 3600, 3600);
        assert_eq!(d, Decision::Alert(2));
        let w4 = w4.unwrap();
        assert_eq!((w4.opener.as_str(), w4.suppressed, w4.carried), ("d", 0, 2));
        assert_eq!(dedup(Some(&w4), "d", 3600, 3600).1, Decision::Alert(2));
        // A retry of the batch that opened both windows alerts for both again.
        assert_eq!(dedup(Some(&w4), "a", 0, 3600), (None, Decision::Alert(0)));
    }

    #[test]
    fn windows_are_half_open_like_sigma_sliding_windows() {
        // 0..300 seconds apart by 75: five events span exactly 300 s, not within 5m.
        let fired = run(
            &[("a", 0), ("b", 75), ("c", 150), ("d", 225), ("e", 300)],
            5,
        );
        assert!(fired.iter().all(Option::is_none), "{fired:?}");
        let fired = run(
            &[("a", 0), ("b", 75), ("c", 150), ("d", 225), ("e", 299)],
            5,
        );
        assert_eq!(fired[4], Some(5));
    }

    #[test]
    fn late_events_still_count_with_the_ones_they_happened_among() {
        let fired = run(
            &[
                ("a", 0),
                ("b", 1_000),
                ("c", 10),
                ("d", 20),
                ("e", 30),
                ("f", 40),
            ],
            5,
        );
        assert_eq!(fired[5], Some(5), "{fired:?}");
    }

    #[test]
    fn repeats_of_one_value_do_not_crowd_out_distinct_ones() {
        let mut state: Option<Window> = None;
        let mut fired = 0;
        for i in 0..3_000 {
            let tag = if i % 300 == 0 {
                format!("v{i}")
            } else {
                "same".to_owned()
            };
            let event = Counted {
                id: format!("e{i}"),
                t: i / 10,
                tag,
            };
            let (write, decision) =
                correlate(state.as_ref(), event, 600, Counting::DistinctTags, 10);
            state = write.or(state);
            fired += usize::from(decision != Decision::Quiet);
        }
        assert_eq!(fired, 1);
        assert!(state.unwrap().events.len() <= 12, "one entry per value");
    }

    #[test]
    fn dedup_counts_each_repeat_once_even_when_retried() {
        let (w, _) = dedup(None, "a", 100, 3600);
        let (w, _) = dedup(w.as_ref(), "b", 110, 3600);
        let w = w.unwrap();
        assert_eq!(w.suppressed, 1);
        assert_eq!(dedup(Some(&w), "b", 110, 3600), (None, Decision::Quiet));
        assert_eq!(dedup(Some(&w), "late", 50, 3600), (None, Decision::Quiet));
    }

    #[test]
    fn a_retried_batch_that_fired_a_group_twice_fires_both_again() {
        let events: Vec<(String, i64)> = (0..10).map(|i| (format!("e{i}"), i * 100)).collect();
        let mut state: Option<Window> = None;
        let mut first = Vec::new();
        for (id, t) in &events {
            let (write, decision) =
                correlate(state.as_ref(), counted(id, *t), 300, Counting::Events, 3);
            state = write.or(state);
            first.push(decision != Decision::Quiet);
        }
        let mut again = Vec::new();
        for (id, t) in &events {
            let (write, decision) =
                correlate(state.as_ref(), counted(id, *t), 300, Counting::Events, 3);
            state = write.or(state);
            again.push(decision != Decision::Quiet);
        }
        assert!(first.iter().filter(|f| **f).count() >= 2, "{first:?}");
        assert_eq!(first, again);
    }

    #[test]
    fn first_seen_is_new_once_per_history() {
        let day = 86_400;
        let (s, d) = first_seen(None, "a", 0, 14 * day);
        assert_eq!(d, Decision::Alert(()));
        let s = s.unwrap();
        assert_eq!(
            first_seen(Some(&s), "a", 0, 14 * day).1,
            Decision::Alert(())
        );
        assert_eq!(
            first_seen(Some(&s), "b", 10, 14 * day),
            (None, Decision::Quiet)
        );
        let (refreshed, d) = first_seen(Some(&s), "c", day, 14 * day);
        assert_eq!(d, Decision::Quiet);
        let refreshed = refreshed.unwrap();
        assert_eq!(refreshed.last_at, day);
        assert_eq!(
            first_seen(Some(&refreshed), "d", 15 * day, 14 * day).1,
            Decision::Quiet
        );
        assert_eq!(
            first_seen(Some(&refreshed), "e", 15 * day + 1, 14 * day).1,
            Decision::Alert(())
        );
    }
}
