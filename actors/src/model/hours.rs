//! Opening hours and holidays of a queue (Q9), in the queue's time zone.
//!
//! A queue with neither hours nor holidays is always open. Otherwise it is
//! open at an instant when the local date there is not a holiday and the
//! local time falls in one of that weekday's ranges (`open_minute` included,
//! `close_minute` excluded); a queue with holidays and no hours is open on
//! every other day. Local time is what the clocks on the wall show: on a
//! day that springs forward, the skipped hour is never open, and on one that
//! falls back, the repeated hour is open (or closed) twice.
//!
//! Pure: the caller passes the instant and the resolved time zone.

use jiff::civil::{Date, Weekday as JiffWeekday};
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::queue::{QueueSpec, Weekday};

/// Whether a queue is open at an instant, and when that next changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opening {
    /// Open now.
    pub open: bool,
    /// The next instant (ms since the epoch) the state flips, within the
    /// coming 8 days; `None` if it does not.
    pub next_change_ms: Option<u64>,
}

fn weekday(day: JiffWeekday) -> Weekday {
    match day {
        JiffWeekday::Monday => Weekday::Monday,
        JiffWeekday::Tuesday => Weekday::Tuesday,
        JiffWeekday::Wednesday => Weekday::Wednesday,
        JiffWeekday::Thursday => Weekday::Thursday,
        JiffWeekday::Friday => Weekday::Friday,
        JiffWeekday::Saturday => Weekday::Saturday,
        JiffWeekday::Sunday => Weekday::Sunday,
    }
}

fn timestamp(ms: u64) -> Timestamp {
    i64::try_from(ms)
        .ok()
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(Timestamp::MAX)
}

fn millis(ts: Timestamp) -> u64 {
    u64::try_from(ts.as_millisecond()).unwrap_or(0)
}

/// Whether the queue is open at `now_ms` in `tz`.
pub fn is_open(spec: &QueueSpec, now_ms: u64, tz: &TimeZone) -> bool {
    if spec.opening_hours.is_empty() && spec.holidays.is_empty() {
        return true;
    }
    let local = timestamp(now_ms).to_zoned(tz.clone());
    if spec.holidays.contains(&local.date().to_string()) {
        return false;
    }
    if spec.opening_hours.is_empty() {
        return true;
    }
    let day = weekday(local.weekday());
    let minute =
        u16::try_from(local.hour()).unwrap_or(0) * 60 + u16::try_from(local.minute()).unwrap_or(0);
    spec.opening_hours
        .iter()
        .any(|r| r.day == day && r.open_minute <= minute && minute < r.close_minute)
}

/// The instants the state may flip at, on the local days from `from`: each
/// midnight (holidays) and each range's opening and closing.
fn candidates(spec: &QueueSpec, from: Date, tz: &TimeZone) -> Vec<u64> {
    let mut out = Vec::new();
    for offset in 0..=8i32 {
        let Ok(date) = from.checked_add(jiff::Span::new().days(offset)) else {
            continue;
        };
        let mut minutes = vec![0u16];
        for r in spec
            .opening_hours
            .iter()
            .filter(|r| r.day == weekday(date.weekday()))
        {
            minutes.push(r.open_minute);
            minutes.push(r.close_minute);
        }
        for m in minutes {
            let at = if m >= 1440 {
                date.checked_add(jiff::Span::new().days(1))
                    .map(|d| d.at(0, 0, 0, 0))
            } else {
                Ok(date.at(
                    i8::try_from(m / 60).unwrap_or(0),
                    i8::try_from(m % 60).unwrap_or(0),
                    0,
                    0,
                ))
            };
            // A local time in a spring-forward gap maps to the instant after it.
            if let Ok(zoned) = at.and_then(|dt| dt.to_zoned(tz.clone())) {
                out.push(millis(zoned.timestamp()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Whether the queue is open at `now_ms` and when that next changes.
pub fn opening(spec: &QueueSpec, now_ms: u64, tz: &TimeZone) -> Opening {
    let open = is_open(spec, now_ms, tz);
    if spec.opening_hours.is_empty() && spec.holidays.is_empty() {
        return Opening {
            open,
            next_change_ms: None,
        };
    }
    let today = timestamp(now_ms).to_zoned(tz.clone()).date();
    let yesterday = today.yesterday().unwrap_or(today);
    let next_change_ms = candidates(spec, yesterday, tz)
        .into_iter()
        .filter(|at| *at > now_ms)
        .find(|at| is_open(spec, *at, tz) != open);
    Opening {
        open,
        next_change_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> QueueSpec {
        serde_json::from_value(json).expect("a valid spec")
    }

    fn at(tz: &TimeZone, local: &str) -> u64 {
        let dt: jiff::civil::DateTime = local.parse().expect("a local date-time");
        millis(dt.to_zoned(tz.clone()).expect("exists").timestamp())
    }

    fn prague() -> TimeZone {
        TimeZone::get("Europe/Prague").expect("the system's tz database has Europe/Prague")
    }

    /// Weekdays 08:00-18:00, Saturday 09:00-12:00, two holidays; a table of
    /// local instants (2026-03-27 is a Friday; 2026-03-29 Prague springs
    /// forward at 02:00, 2026-10-25 falls back at 03:00).
    #[test]
    fn the_table_of_instants() {
        let tz = prague();
        let mut hours = Vec::new();
        for day in ["monday", "tuesday", "wednesday", "thursday", "friday"] {
            hours.push(serde_json::json!({"day": day, "open_minute": 480, "close_minute": 1080}));
        }
        hours.push(serde_json::json!({"day": "saturday", "open_minute": 540, "close_minute": 720}));
        hours.push(serde_json::json!({"day": "sunday", "open_minute": 120, "close_minute": 240}));
        let s = spec(serde_json::json!({
            "name": "Sales", "timezone": "Europe/Prague", "opening_hours": hours,
            "holidays": ["2026-12-24", "2026-12-25"],
            "closed_destination": {"kind": "hangup", "prompt": null}
        }));
        for (local, open) in [
            ("2026-03-27T07:59:59", false),
            ("2026-03-27T08:00", true),
            ("2026-03-27T17:59", true),
            ("2026-03-27T18:00", false),
            ("2026-03-28T11:59", true),
            ("2026-03-28T12:00", false),
            // Sunday 02:00-04:00 on the day 02:00-03:00 does not exist.
            ("2026-03-29T01:59", false),
            ("2026-03-29T03:00", true),
            ("2026-03-29T04:00", false),
            ("2026-12-24T10:00", false),
            ("2026-12-23T10:00", true),
        ] {
            assert_eq!(is_open(&s, at(&tz, local), &tz), open, "{local}");
        }
        // The same instant is 10:00 in Prague and 09:00 in UTC: the zone decides.
        let utc_nine = at(&TimeZone::UTC, "2026-03-27T07:30");
        assert!(is_open(&s, utc_nine, &tz), "08:30 in Prague");
        assert!(
            !is_open(
                &spec(serde_json::json!({
                    "name": "Sales", "timezone": "UTC",
                    "opening_hours": [{"day": "friday", "open_minute": 480, "close_minute": 1080}],
                    "closed_destination": {"kind": "hangup", "prompt": null}
                })),
                utc_nine,
                &TimeZone::UTC
            ),
            "07:30 in UTC"
        );
    }

    #[test]
    fn the_next_change_follows_daylight_saving() {
        let tz = prague();
        let s = spec(serde_json::json!({
            "name": "Night", "timezone": "Europe/Prague",
            "opening_hours": [{"day": "sunday", "open_minute": 60, "close_minute": 300}],
            "closed_destination": {"kind": "hangup", "prompt": null}
        }));
        // Saturday evening before the fall-back night: opens at 01:00 CEST,
        // closes at 05:00 CET, five hours later (the 02:00-03:00 hour twice).
        let o = opening(&s, at(&tz, "2026-10-24T20:00"), &tz);
        assert_eq!(
            o,
            Opening {
                open: false,
                next_change_ms: Some(at(&tz, "2026-10-25T01:00"))
            }
        );
        let open_at = o.next_change_ms.expect("opens");
        let o = opening(&s, open_at, &tz);
        assert!(o.open);
        assert_eq!(o.next_change_ms.map(|c| c - open_at), Some(5 * 3_600_000));
        // A holiday-only queue flips at local midnights.
        let s = spec(serde_json::json!({
            "name": "Closed today", "timezone": "Europe/Prague", "holidays": ["2026-12-24"],
            "closed_destination": {"kind": "hangup", "prompt": null}
        }));
        let o = opening(&s, at(&tz, "2026-12-24T12:00"), &tz);
        assert_eq!(
            o,
            Opening {
                open: false,
                next_change_ms: Some(at(&tz, "2026-12-25T00:00"))
            }
        );
        let always = spec(serde_json::json!({"name": "Always"}));
        assert_eq!(
            opening(&always, 0, &tz),
            Opening {
                open: true,
                next_change_ms: None
            }
        );
    }
}
