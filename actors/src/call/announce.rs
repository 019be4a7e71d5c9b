//! What a waiting caller hears besides music (Q6), part of the call
//! machine: every cycle (the queue's periodic announcement's `every_s`, or
//! [`DEFAULT_CYCLE_MS`] when it only announces the position or the wait),
//! the position ("you are next", or "there are N calls waiting"), the
//! estimated wait ("the estimated hold time is N minutes", from the queue
//! actor's estimate), then the periodic prompt; then music again.
//!
//! One announcement at a time: the next cycle starts when the last one
//! ended. An offer to an agent stops the announcement at once (music
//! again), and no announcement starts while an agent is offered the call.
//! Prompts follow one another on the relay's `generated_finished` events,
//! read every [`super::exit::DTMF_POLL_MS`].

use std::collections::VecDeque;

use super::exit::DTMF_POLL_MS;
use super::io::{CallOutput, MediaReply, MediaRequest, MediaStep, CALLER_LEG};
use super::machine::{CallMachine, Phase};
use crate::messages::{Address, Message, QueueMsg};

/// The cycle of position and wait announcements without a periodic one.
pub const DEFAULT_CYCLE_MS: u64 = 30_000;
/// An announcement plays for at most this long.
pub const ANNOUNCEMENT_MAX_MS: u64 = 60_000;

pub(super) const TIMER_ANNOUNCE: u64 = 4;
pub(super) const TIMER_ANNOUNCE_POLL: u64 = 5;

/// The announcement bookkeeping of one call.
#[derive(Debug, Clone, Default)]
pub struct Announcements {
    /// The queue actor was asked for the place; its answer starts it.
    asked: bool,
    /// Prompts still to play, the current one first.
    playing: VecDeque<String>,
    /// An announcement is on.
    active: bool,
    /// The count of finished prompts that means the current one ended.
    target: usize,
    since_ms: u64,
}

/// The prompts that say `n` (0-999) with the relay's spoken numbers.
pub fn number_prompts(n: u32) -> Vec<String> {
    let digit = |d: u32| format!("digits/{d}");
    let mut out = Vec::new();
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        out.push(digit(hundreds));
        out.push("digits/hundred".into());
    }
    match rest {
        0 if hundreds > 0 => {}
        0..=20 => out.push(digit(rest)),
        _ => {
            out.push(digit(rest / 10 * 10));
            if rest % 10 > 0 {
                out.push(digit(rest % 10));
            }
        }
    }
    out
}

/// What a caller at `position` (1: next) with an estimated wait hears.
pub fn place_prompts(position: Option<u32>, estimated_wait_s: Option<u32>) -> Vec<String> {
    let mut out = Vec::new();
    match position {
        Some(1) => out.push("queue-youarenext".to_string()),
        Some(p) => {
            out.push("queue-thereare".into());
            out.extend(number_prompts(p - 1));
            out.push("queue-callswaiting".into());
        }
        None => {}
    }
    if let Some(wait) = estimated_wait_s {
        out.push("queue-holdtime".into());
        if wait < 60 {
            out.push("queue-less-than".into());
            out.extend(number_prompts(1));
        } else {
            out.extend(number_prompts(wait.div_ceil(60)));
        }
        out.push("queue-minutes".into());
    }
    out
}

fn finished(events: &[super::MediaEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.kind == "generated_finished" && e.leg == CALLER_LEG)
        .count()
}

impl CallMachine {
    fn announces(&self) -> bool {
        let s = &self.setup.spec;
        s.periodic_announcement.is_some() || s.announce_position || s.announce_estimated_wait
    }

    fn cycle_ms(&self) -> u64 {
        self.setup
            .spec
            .periodic_announcement
            .as_ref()
            .map_or(DEFAULT_CYCLE_MS, |a| u64::from(a.every_s) * 1000)
    }

    /// The next announcement in one cycle, if the queue has any.
    pub(super) fn arm_announcement(&mut self, out: &mut Vec<CallOutput>) {
        self.announcements = Announcements::default();
        if self.announces() {
            out.push(CallOutput::Timer {
                after_ms: self.cycle_ms(),
                timer: self.timer_id(TIMER_ANNOUNCE),
            });
        }
    }

    /// A cycle ended: the place is asked of the queue, or the periodic
    /// prompt starts.
    pub(super) fn announcement_due(&mut self, now_ms: u64, out: &mut Vec<CallOutput>) {
        if self.phase != Phase::Waiting || self.announcements.active || self.announcements.asked {
            return;
        }
        if !self.offers.is_empty() {
            // An agent rings: no announcement now, one cycle later.
            self.arm_announcement(out);
            return;
        }
        let s = &self.setup.spec;
        if s.announce_position || s.announce_estimated_wait {
            self.announcements.asked = true;
            self.send(
                Address::queue(self.setup.tenant, self.setup.queue),
                Message::Queue(QueueMsg::Where {
                    entry: self.setup.call.clone(),
                }),
                out,
            );
        } else {
            self.start_announcement(now_ms, Vec::new(), out);
        }
    }

    /// The queue told the caller's place.
    pub(super) fn on_place(
        &mut self,
        now_ms: u64,
        position: Option<u32>,
        estimated_wait_s: Option<u32>,
        out: &mut Vec<CallOutput>,
    ) {
        if !self.announcements.asked || self.phase != Phase::Waiting {
            return;
        }
        self.announcements.asked = false;
        let s = &self.setup.spec;
        let position = position.filter(|_| s.announce_position);
        let wait = estimated_wait_s.filter(|_| s.announce_estimated_wait);
        self.start_announcement(now_ms, place_prompts(position, wait), out);
    }

    fn start_announcement(
        &mut self,
        now_ms: u64,
        mut prompts: Vec<String>,
        out: &mut Vec<CallOutput>,
    ) {
        if let Some(p) = &self.setup.spec.periodic_announcement {
            prompts.push(p.prompt.clone());
        }
        if prompts.is_empty() {
            self.arm_announcement(out);
            return;
        }
        let a = &mut self.announcements;
        a.playing = prompts.into();
        a.active = true;
        a.since_ms = now_ms;
        out.push(CallOutput::Media {
            step: MediaStep::AnnounceBaseline,
            request: MediaRequest::Events,
        });
    }

    fn play_next(&mut self, out: &mut Vec<CallOutput>) {
        let Some(prompt) = self.announcements.playing.front().cloned() else {
            return;
        };
        out.push(CallOutput::Media {
            step: MediaStep::AnnouncePrompt,
            request: MediaRequest::Prompt {
                leg: CALLER_LEG,
                prompt,
            },
        });
        out.push(CallOutput::Timer {
            after_ms: DTMF_POLL_MS,
            timer: self.timer_id(TIMER_ANNOUNCE_POLL),
        });
    }

    /// The announcement is over (or stopped): music again, the next cycle.
    pub(super) fn end_announcement(&mut self, out: &mut Vec<CallOutput>) {
        if !self.announcements.active {
            return;
        }
        self.announcements.active = false;
        out.push(CallOutput::Media {
            step: MediaStep::StopMusic,
            request: MediaRequest::StopPlay { leg: CALLER_LEG },
        });
        self.play_music(self.queue_music(), out);
        self.arm_announcement(out);
    }

    pub(super) fn announcement_poll(&mut self, out: &mut Vec<CallOutput>) {
        if self.announcements.active && self.phase == Phase::Waiting {
            out.push(CallOutput::Media {
                step: MediaStep::AnnounceEvents,
                request: MediaRequest::Events,
            });
        }
    }

    pub(super) fn on_announce_media(
        &mut self,
        now_ms: u64,
        step: MediaStep,
        result: Result<MediaReply, String>,
        out: &mut Vec<CallOutput>,
    ) {
        if !self.announcements.active || self.phase != Phase::Waiting {
            return;
        }
        match (step, result) {
            (MediaStep::AnnounceBaseline, Ok(MediaReply::Events(events))) => {
                self.announcements.target = finished(&events) + 1;
                out.push(CallOutput::Media {
                    step: MediaStep::StopMusic,
                    request: MediaRequest::StopPlay { leg: CALLER_LEG },
                });
                self.play_next(out);
            }
            (MediaStep::AnnounceEvents, Ok(MediaReply::Events(events))) => {
                let too_long =
                    now_ms.saturating_sub(self.announcements.since_ms) > ANNOUNCEMENT_MAX_MS;
                if finished(&events) >= self.announcements.target {
                    self.announcements.playing.pop_front();
                    self.announcements.target += 1;
                    if self.announcements.playing.is_empty() || too_long {
                        self.end_announcement(out);
                    } else {
                        self.play_next(out);
                    }
                } else if too_long {
                    self.end_announcement(out);
                } else {
                    out.push(CallOutput::Timer {
                        after_ms: DTMF_POLL_MS,
                        timer: self.timer_id(TIMER_ANNOUNCE_POLL),
                    });
                }
            }
            (_, Err(reason)) => {
                tracing::warn!(call = %self.setup.call, %reason, "an announcement cannot play");
                self.end_announcement(out);
            }
            _ => {}
        }
    }

    /// Whether an announcement is on (for the invariants).
    pub(super) fn announcing(&self) -> bool {
        self.announcements.active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_places_are_said_with_the_sound_library() {
        assert_eq!(number_prompts(0), ["digits/0"]);
        assert_eq!(number_prompts(17), ["digits/17"]);
        assert_eq!(number_prompts(42), ["digits/40", "digits/2"]);
        assert_eq!(number_prompts(300), ["digits/3", "digits/hundred"]);
        assert_eq!(
            number_prompts(105),
            ["digits/1", "digits/hundred", "digits/5"]
        );
        assert_eq!(place_prompts(Some(1), None), ["queue-youarenext"]);
        assert_eq!(
            place_prompts(Some(4), Some(150)),
            [
                "queue-thereare",
                "digits/3",
                "queue-callswaiting",
                "queue-holdtime",
                "digits/3",
                "queue-minutes"
            ]
        );
        assert_eq!(
            place_prompts(None, Some(20)),
            [
                "queue-holdtime",
                "queue-less-than",
                "digits/1",
                "queue-minutes"
            ]
        );
    }
}
