//! Queue configuration covering Q1-Q9 (and the queue's recording C3,
//! presentation D5, static members A1).

use super::ids::{PauseTypeId, QueueId, SkillId, UserId};
use super::refusal::{ensure, Checked, RefusalCode};
use super::user::valid_phone_number;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Routing strategies (Q1).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
#[allow(missing_docs)]
pub enum Strategy {
    RingAll,
    #[default]
    LongestIdle,
    LeastRecent,
    FewestCalls,
    LeastTalkTime,
    RoundRobinMemory,
    Linear,
    Random,
    /// Random, weighted per agent (agents not listed weigh 1).
    WeightedRandom {
        /// Per-agent weights.
        weights: Vec<AgentWeight>,
    },
    SkillsBased,
}

/// A weight for weighted random routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AgentWeight {
    /// The agent.
    pub user: UserId,
    /// Weight, 1..=100.
    pub weight: u32,
}

/// A skill a queue requires (Q2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SkillRequirement {
    /// The skill.
    pub skill: SkillId,
    /// Minimum level at first.
    pub min_level: u8,
}

/// A relaxation step (Q2): after `after_s` of waiting, accept lower levels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Relaxation {
    /// Seconds of waiting.
    pub after_s: u32,
    /// New minimum level for every required skill; `None`: any agent.
    pub min_level: Option<u8>,
}

/// What happens when no agent is logged in or available (Q5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EmptyPolicy {
    /// Callers may join/stay regardless.
    #[default]
    Always,
    /// Refuse/leave when no agent is logged in.
    WhenNoAgentLoggedIn,
    /// Refuse/leave when no agent is available (logged in, not paused, not busy).
    WhenNoAgentAvailable,
}

/// Which agent states count as available for
/// [`EmptyPolicy::WhenNoAgentAvailable`] (Q5). An idle agent always counts,
/// a logged-out one never; the defaults count agents that are busy with a
/// call (ringing, talking, in after-call work) and not those paused or
/// without a reachable device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct EmptyCounts {
    /// A paused agent counts.
    pub paused: bool,
    /// An agent whose phone rings for a call counts.
    pub ringing: bool,
    /// An agent on a call counts.
    pub talking: bool,
    /// An agent in after-call work counts.
    pub wrap_up: bool,
    /// A logged-in agent with no reachable device counts (A8).
    pub unreachable: bool,
}

impl Default for EmptyCounts {
    fn default() -> Self {
        EmptyCounts {
            paused: false,
            ringing: true,
            talking: true,
            wrap_up: true,
            unreachable: false,
        }
    }
}

/// Where calls go on overflow or when closed (Q5, Q9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Destination {
    /// Another queue.
    Queue {
        /// The queue.
        queue: QueueId,
    },
    /// A phone number.
    Number {
        /// The number.
        number: String,
    },
    /// A prompt, then hang up.
    Hangup {
        /// Prompt played first.
        prompt: Option<String>,
    },
}

/// Why a caller left a queue by one of its exits (Q5); the reason of its
/// queue segment in the activity record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    /// The queue held `max_length` callers already.
    QueueFull,
    /// The caller waited `max_wait_s`.
    MaxWait,
    /// The caller waited the overflow's `after_s`.
    Overflow,
    /// Nobody to join (`join_when_empty`).
    NoAgents,
    /// The last agent left while the caller waited (`leave_when_empty`).
    Emptied,
    /// The caller pressed the queue's exit key.
    ExitKey,
    /// The queue is closed (Q9): outside its hours, or a holiday.
    Closed,
    /// A supervisor or the API sent the caller elsewhere (S2).
    Withdrawn,
}

impl ExitReason {
    /// Its name in records and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ExitReason::QueueFull => "queue_full",
            ExitReason::MaxWait => "max_wait",
            ExitReason::Overflow => "overflow",
            ExitReason::NoAgents => "no_agents",
            ExitReason::Emptied => "emptied",
            ExitReason::ExitKey => "exit_key",
            ExitReason::Closed => "closed",
            ExitReason::Withdrawn => "withdrawn",
        }
    }

    /// The sentence a refused or hung-up caller's reason phrase carries.
    pub fn describe(self) -> &'static str {
        match self {
            ExitReason::QueueFull => "Q5: the queue is full",
            ExitReason::MaxWait => "Q5: the caller waited the queue's maximum wait",
            ExitReason::Overflow => "Q5: the caller waited until the queue's overflow",
            ExitReason::NoAgents => "Q5: no agent to join in the queue",
            ExitReason::Emptied => "Q5: the queue's last agent left",
            ExitReason::ExitKey => "Q5: the caller pressed the queue's exit key",
            ExitReason::Closed => "Q9: the queue is closed",
            ExitReason::Withdrawn => "S2: the caller was withdrawn from the queue",
        }
    }

    /// Where the queue sends a caller that leaves for this reason: the exit
    /// key's destination (or else the overflow's), the overflow's for every
    /// other exit; `None`: hang up.
    pub fn destination(self, spec: &QueueSpec) -> Option<&Destination> {
        let overflow = spec.overflow.as_ref().map(|o| &o.destination);
        match self {
            ExitReason::ExitKey => spec.exit_destination.as_ref().or(overflow),
            ExitReason::Closed => spec.closed_destination.as_ref(),
            // The withdrawal names its own.
            ExitReason::Withdrawn => None,
            _ => overflow,
        }
    }
}

/// Overflow after a wait (Q5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Overflow {
    /// Seconds of waiting before overflow.
    pub after_s: u32,
    /// Where the call goes.
    pub destination: Destination,
}

/// A periodic announcement (Q6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Announcement {
    /// Prompt name.
    pub prompt: String,
    /// Period in seconds.
    pub every_s: u32,
}

/// Weekdays for opening hours (Q9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

/// An opening range on one weekday, local time, minutes since midnight (Q9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OpeningRange {
    /// Weekday.
    pub day: Weekday,
    /// Opens at, minutes since local midnight (0..1440).
    pub open_minute: u16,
    /// Closes at, minutes since local midnight (open_minute < close_minute <= 1440).
    pub close_minute: u16,
}

/// What happens to the callers still waiting when a queue closes (Q9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClosingRule {
    /// They stay and are served by the agents still there.
    #[default]
    Stay,
    /// They go to the closed destination.
    Leave,
}

/// How a queue answers its callers while they wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AnswerMode {
    /// 200 at once; music and announcements play in the answered call.
    #[default]
    Answer,
    /// 183 with early media; the 200 goes when an agent answers (the
    /// caller's carrier does not bill the wait).
    EarlyMedia,
}

/// Recording of calls (C3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum RecordingMode {
    #[default]
    Off,
    FromStart,
    FromAgentConnect,
}

/// A queue's configuration (Q1-Q9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueSpec {
    /// Name, unique in the tenant.
    pub name: String,
    /// Strategy (Q1).
    #[serde(default)]
    pub strategy: Strategy,
    /// Required skills (Q2).
    #[serde(default)]
    pub required_skills: Vec<SkillRequirement>,
    /// Relaxation steps, by increasing `after_s` (Q2).
    #[serde(default)]
    pub relaxations: Vec<Relaxation>,
    /// Priority of a new caller (Q3), 0..=100, higher first.
    #[serde(default)]
    pub default_priority: u32,
    /// Ring timeout per offer (Q4), 5..=300 s.
    #[serde(default = "default_ring_timeout_s")]
    pub ring_timeout_s: u32,
    /// Delay before re-offering, 0..=300 s (Q4).
    #[serde(default)]
    pub retry_delay_s: u32,
    /// Auto-pause an agent after this many missed offers (Q4).
    #[serde(default)]
    pub auto_pause_after_missed: Option<u32>,
    /// The pause type of an auto-pause (Q4).
    #[serde(default)]
    pub auto_pause_type: Option<PauseTypeId>,
    /// Back-off after an agent rejects or is busy, seconds (Q4).
    #[serde(default)]
    pub reject_backoff_s: u32,
    /// Maximum waiting callers (Q5); `None`: unlimited.
    #[serde(default)]
    pub max_length: Option<u32>,
    /// Maximum wait before overflow/exit (Q5).
    #[serde(default)]
    pub max_wait_s: Option<u32>,
    /// Join policy when agents are missing (Q5).
    #[serde(default)]
    pub join_when_empty: EmptyPolicy,
    /// Leave policy when agents are missing (Q5).
    #[serde(default)]
    pub leave_when_empty: EmptyPolicy,
    /// Which agent states count as available for the empty policies (Q5).
    #[serde(default)]
    pub empty_counts: EmptyCounts,
    /// Overflow (Q5): after `after_s` of waiting the caller goes to its
    /// destination; so does a caller the queue's limits or empty policies
    /// turn away.
    #[serde(default)]
    pub overflow: Option<Overflow>,
    /// DTMF key that exits the queue (Q5).
    #[serde(default)]
    pub exit_dtmf_key: Option<String>,
    /// Where the exit key leads (Q5); without it, the overflow destination,
    /// and without that a hang-up.
    #[serde(default)]
    pub exit_destination: Option<Destination>,
    /// Music on hold (Q6).
    #[serde(default)]
    pub music_on_hold: Option<String>,
    /// Periodic announcement (Q6).
    #[serde(default)]
    pub periodic_announcement: Option<Announcement>,
    /// Announce position (Q6).
    #[serde(default)]
    pub announce_position: bool,
    /// Announce estimated wait (Q6).
    #[serde(default)]
    pub announce_estimated_wait: bool,
    /// Callers may ask for a callback (Q7).
    #[serde(default)]
    pub callbacks_enabled: bool,
    /// A caller back within this window resumes its place (Q8).
    #[serde(default)]
    pub rejoin_window_s: Option<u32>,
    /// Opening hours; empty: always open (Q9).
    #[serde(default)]
    pub opening_hours: Vec<OpeningRange>,
    /// Closed dates, `YYYY-MM-DD` (Q9).
    #[serde(default)]
    pub holidays: BTreeSet<String>,
    /// Where calls go when closed (Q9).
    #[serde(default)]
    pub closed_destination: Option<Destination>,
    /// What happens to the callers waiting at closing time (Q9).
    #[serde(default)]
    pub at_closing: ClosingRule,
    /// IANA time zone of the opening hours.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// After-call work limit (A4), 0..=3600 s; an agent's own limit wins.
    #[serde(default)]
    pub wrap_up_s: u32,
    /// Disposition codes an agent chooses from in after-call work (C4):
    /// at most 50, each 1 to 32 characters of `a-z`, `0-9`, `_` and `-`.
    #[serde(default)]
    pub disposition_codes: Vec<String>,
    /// 200 at once or 183 with early media while waiting.
    #[serde(default)]
    pub answer: AnswerMode,
    /// Recording (C3).
    #[serde(default)]
    pub recording: RecordingMode,
    /// Caller id for outbound calls of the queue (D5).
    #[serde(default)]
    pub presentation_number: Option<String>,
    /// Static members, never checked out automatically (A1).
    #[serde(default)]
    pub static_members: BTreeSet<UserId>,
}

fn default_ring_timeout_s() -> u32 {
    20
}

fn default_timezone() -> String {
    "UTC".into()
}

fn valid_date(date: &str) -> bool {
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let num = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
    if !(num(y, 4) && num(m, 2) && num(d, 2)) {
        return false;
    }
    let (m, d) = (m.parse::<u8>().unwrap_or(0), d.parse::<u8>().unwrap_or(0));
    (1..=12).contains(&m) && (1..=31).contains(&d)
}

impl QueueSpec {
    /// Rules of the spec alone (references are checked by the ledger).
    pub fn validate(&self) -> Checked<()> {
        let bad = |what: String| {
            Err(super::refusal::Refusal::new(
                RefusalCode::QueueConfigInvalid,
                what,
            ))
        };
        ensure(
            !self.name.trim().is_empty(),
            RefusalCode::NameRequired,
            || "a queue needs a name of 1 to 200 characters".into(),
        )?;
        use super::text::{check_opt, LINE, SHORT};
        LINE.check("name", &self.name)?;
        check_opt(SHORT, "music_on_hold", self.music_on_hold.as_deref())?;
        if let Some(a) = &self.periodic_announcement {
            SHORT.check("periodic_announcement.prompt", &a.prompt)?;
        }
        for destination in self.destinations() {
            if let Destination::Hangup { prompt } = destination {
                check_opt(SHORT, "destination prompt", prompt.as_deref())?;
            }
        }
        if self.default_priority > 100 {
            return bad("default_priority is 0 to 100".into());
        }
        if !(5..=300).contains(&self.ring_timeout_s) {
            return bad("ring_timeout_s is 5 to 300 seconds".into());
        }
        if self.retry_delay_s > 300 || self.reject_backoff_s > 3600 || self.wrap_up_s > 3600 {
            return bad(
                "retry_delay_s is at most 300, reject_backoff_s and wrap_up_s at most 3600".into(),
            );
        }
        if self.disposition_codes.len() > 50
            || self.disposition_codes.iter().any(|c| {
                !(1..=32).contains(&c.len())
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b))
            })
        {
            return bad(
                "C4: at most 50 disposition codes, each 1 to 32 characters of a-z, 0-9, _ and -"
                    .into(),
            );
        }
        let mut seen = BTreeSet::new();
        if let Some(twice) = self.disposition_codes.iter().find(|c| !seen.insert(*c)) {
            return bad(format!(
                "C4: the disposition code {twice:?} is listed twice"
            ));
        }
        if self.auto_pause_after_missed == Some(0) {
            return bad("auto_pause_after_missed is at least 1".into());
        }
        if self.auto_pause_after_missed.is_some() != self.auto_pause_type.is_some() {
            return bad("auto_pause_after_missed and auto_pause_type are set together".into());
        }
        if self.strategy == Strategy::SkillsBased && self.required_skills.is_empty() {
            return bad("skills-based routing needs at least one required skill".into());
        }
        if let Strategy::WeightedRandom { weights } = &self.strategy {
            if weights.iter().any(|w| !(1..=100).contains(&w.weight)) {
                return bad("weights are 1 to 100".into());
            }
        }
        if self
            .required_skills
            .iter()
            .any(|r| !(1..=10).contains(&r.min_level))
        {
            return bad("required skill levels are 1 to 10".into());
        }
        let mut last = 0;
        for step in &self.relaxations {
            if step.after_s <= last || step.min_level.is_some_and(|l| !(1..=10).contains(&l)) {
                return bad(
                    "relaxation steps have increasing after_s > 0 and levels 1 to 10".into(),
                );
            }
            last = step.after_s;
        }
        if self.max_length == Some(0) || self.max_wait_s == Some(0) {
            return bad("max_length and max_wait_s are at least 1 when set".into());
        }
        if let Some(key) = &self.exit_dtmf_key {
            if !(key.len() == 1 && "0123456789*#".contains(key.as_str())) {
                return bad("exit_dtmf_key is one of 0-9, * or #".into());
            }
        }
        if self
            .periodic_announcement
            .as_ref()
            .is_some_and(|a| a.every_s < 5)
        {
            return bad("periodic announcements are at least 5 seconds apart".into());
        }
        for range in &self.opening_hours {
            if range.open_minute >= range.close_minute || range.close_minute > 1440 {
                return bad(
                    "an opening range opens before it closes, within 0..=1440 minutes".into(),
                );
            }
        }
        if (!self.opening_hours.is_empty() || !self.holidays.is_empty())
            && self.closed_destination.is_none()
        {
            return bad("a queue with opening hours or holidays needs a closed_destination".into());
        }
        if let Some(date) = self.holidays.iter().find(|d| !valid_date(d)) {
            return bad(format!("holiday {date:?} is not a YYYY-MM-DD date"));
        }
        if !super::directory::valid_timezone(&self.timezone) {
            return bad(format!("{:?} is not an IANA time zone", self.timezone));
        }
        if self.exit_destination.is_some() && self.exit_dtmf_key.is_none() {
            return bad("exit_destination needs an exit_dtmf_key".into());
        }
        if let Some(Destination::Number { number }) = self
            .destinations()
            .find(|d| matches!(d, Destination::Number { .. }))
        {
            // Honest until outbound trunks exist: a caller sent to a number
            // could not be connected anywhere.
            return bad(format!(
                "Q5: calls cannot leave a queue for the external number {number:?}: \
                 dialling out needs an outbound trunk, which this version does not have \
                 (use a queue or a hang-up with a prompt)"
            ));
        }
        for number in self.presentation_number.iter() {
            ensure(
                valid_phone_number(number),
                RefusalCode::PhoneNumberInvalid,
                || format!("{number:?} is not a phone number"),
            )?;
        }
        Ok(())
    }

    /// Every destination the spec names (overflow, exit key, closed).
    pub fn destinations(&self) -> impl Iterator<Item = &Destination> + '_ {
        [
            self.overflow.as_ref().map(|o| &o.destination),
            self.exit_destination.as_ref(),
            self.closed_destination.as_ref(),
        ]
        .into_iter()
        .flatten()
    }

    /// Skills and queues the spec refers to.
    pub fn referenced_skills(&self) -> impl Iterator<Item = SkillId> + '_ {
        self.required_skills.iter().map(|r| r.skill)
    }
}

/// A stored queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Queue {
    /// Id.
    pub id: QueueId,
    /// Settings.
    #[serde(flatten)]
    pub spec: QueueSpec,
}
