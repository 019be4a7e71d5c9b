//! A feature-code call (A3), sans-IO: the agent's phone dials a code; the
//! node answers, asks for the PIN when the code carries none (a prompt,
//! then DTMF digits ended by `#`), does what the code asks through the
//! ledger, and says what happened (or why not) with a short prompt before
//! it hangs up.
//!
//! Invariants: the PIN is compared only as its tenant-salted fingerprint
//! (by the shell, off the machine); at most [`MAX_PIN_DIGITS`] digits are
//! collected, for at most [`PIN_TIMEOUT_MS`]; the call ends with exactly one
//! prompt and a hang-up.

use crate::call::{MediaReply, MediaRequest, CALLER_LEG};
use crate::feature::FeatureRequest;
use crate::ledger::{Command, Outcome, WriteError};
use crate::messages::{EdgeRequest, LegRequest};
use crate::model::activity::{ActivityOutcome, ActivityRecord, Direction};
use crate::model::agent_status::Author;
use crate::model::{DeviceId, PauseTypeId, TenantId, UserId};

/// Digits a PIN may have at most.
pub const MAX_PIN_DIGITS: usize = 12;
/// How long the caller has to enter the PIN.
pub const PIN_TIMEOUT_MS: u64 = 15_000;
/// How often the relay's DTMF events are read while a PIN is entered.
pub const DTMF_POLL_MS: u64 = 200;
/// The closing prompt plays for at most this long before the hang-up.
pub const CLOSING_PROMPT_MAX_MS: u64 = 10_000;

fn finished_count(events: &[crate::call::MediaEvent]) -> usize {
    events
        .iter()
        .filter(|e| e.kind == "generated_finished" && e.leg == CALLER_LEG)
        .count()
}

/// The prompts of feature codes (names of the relay's sound library).
pub mod prompts {
    /// "Please enter your password followed by the pound key."
    pub const ASK_PIN: &str = "agent-pass";
    /// "Agent logged in."
    pub const LOGGED_IN: &str = "agent-loginok";
    /// "Agent logged off."
    pub const LOGGED_OFF: &str = "agent-loggedoff";
    /// "Login incorrect."
    pub const WRONG_PIN: &str = "agent-incorrect";
    /// "Activated." (ready / unpaused)
    pub const READY: &str = "activated";
    /// "De-activated." (paused)
    pub const PAUSED: &str = "de-activated";
    /// "The feature is not available on this line."
    pub const REFUSED: &str = "feature-not-avail-line";
}

/// What the glue knows when it hands a feature call over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureSetup {
    /// Tenant.
    pub tenant: TenantId,
    /// The call's id.
    pub call: String,
    /// This node.
    pub node: u64,
    /// The phone's inbound leg.
    pub leg: u64,
    /// The phone (authenticated by digest).
    pub device: DeviceId,
    /// What was dialled.
    pub dialled: String,
    /// What it asks.
    pub request: FeatureRequest,
    /// The phone's SDP offer.
    pub offer_sdp: String,
    /// The relay.
    pub relay: String,
    /// When it arrived.
    pub arrived_at_ms: u64,
}

/// What the machine reads of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FeatureSnapshot {
    /// The agent the phone belongs to (its owner or the agent bound to it).
    pub agent: Option<UserId>,
    /// The agent's terminals logged in.
    pub terminals: Vec<String>,
    /// Pause types in order (reason code n is the n-th).
    pub pause_types: Vec<PauseTypeId>,
}

/// What a media request was for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureStep {
    /// The session.
    Create,
    /// The phone's leg.
    Leg,
    /// The PIN prompt.
    AskPin,
    /// Reading DTMF.
    Dtmf,
    /// The closing prompt.
    Final,
    /// Waiting for the closing prompt's end.
    FinalWait,
    /// Removing the session.
    Remove,
}

/// An input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureInput {
    /// Begin, with the ledger's view.
    Start(FeatureSnapshot),
    /// The relay answered.
    Media {
        /// What for.
        step: FeatureStep,
        /// Its answer.
        result: Result<MediaReply, String>,
    },
    /// The PIN check's verdict.
    PinChecked {
        /// Whether the fingerprint matched.
        matches: bool,
    },
    /// A ledger write answered.
    Ledger {
        /// Its answer.
        result: Result<Outcome, WriteError>,
    },
    /// Timer: read DTMF, or check the closing prompt.
    Tick,
    /// The phone hung up.
    Ended,
}

/// An output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeatureOutput {
    /// Ask the relay.
    Media {
        /// What for.
        step: FeatureStep,
        /// The request.
        request: MediaRequest,
    },
    /// Compare `pin` with the agent's stored fingerprint.
    CheckPin {
        /// The agent.
        agent: UserId,
        /// The PIN entered.
        pin: String,
    },
    /// Write to the ledger (one at a time).
    Ledger(Box<Command>),
    /// Ask this node's edge.
    Edge(EdgeRequest),
    /// Feed [`FeatureInput::Tick`] after this long.
    Timer {
        /// Delay.
        after_ms: u64,
    },
    /// The call is over.
    Stop,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Setup,
    CollectingPin {
        digits: String,
        seen: usize,
        since_ms: u64,
    },
    Working,
    Closing {
        finished_before: usize,
        since_ms: u64,
    },
    Done,
}

/// The feature-code machine.
#[derive(Debug, Clone)]
pub struct FeatureMachine {
    setup: FeatureSetup,
    snapshot: FeatureSnapshot,
    phase: Phase,
    result: String,
    pending_logouts: Vec<String>,
    ended: bool,
    /// `generated_finished` events of the phone's leg seen so far.
    finished_seen: usize,
    now_ms: u64,
}

fn terminal(device: DeviceId) -> String {
    format!("phone-{device}")
}

impl FeatureMachine {
    /// A machine for a feature call the glue accepted.
    pub fn new(setup: FeatureSetup) -> Self {
        FeatureMachine {
            setup,
            snapshot: FeatureSnapshot::default(),
            phase: Phase::Setup,
            result: String::new(),
            pending_logouts: Vec::new(),
            ended: false,
            finished_seen: 0,
            now_ms: 0,
        }
    }

    /// What the call did (for its record).
    pub fn result(&self) -> &str {
        &self.result
    }

    /// Feeds one input.
    pub fn handle(&mut self, now_ms: u64, input: FeatureInput) -> Vec<FeatureOutput> {
        self.now_ms = now_ms;
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        match input {
            FeatureInput::Start(snapshot) => {
                self.snapshot = snapshot;
                out.push(FeatureOutput::Media {
                    step: FeatureStep::Create,
                    request: MediaRequest::Create,
                });
            }
            FeatureInput::Media { step, result } => self.on_media(now_ms, step, result, &mut out),
            FeatureInput::PinChecked { matches } => {
                if matches {
                    self.login(&mut out);
                } else {
                    self.close(prompts::WRONG_PIN, "A3: the PIN is wrong", &mut out);
                }
            }
            FeatureInput::Ledger { result } => self.on_ledger(result, &mut out),
            FeatureInput::Tick => match &self.phase {
                Phase::CollectingPin { since_ms, .. } => {
                    if now_ms.saturating_sub(*since_ms) > PIN_TIMEOUT_MS {
                        self.close(
                            prompts::WRONG_PIN,
                            "A3: no PIN was entered in time",
                            &mut out,
                        );
                    } else {
                        out.push(FeatureOutput::Media {
                            step: FeatureStep::Dtmf,
                            request: MediaRequest::Events,
                        });
                    }
                }
                Phase::Closing { since_ms, .. } => {
                    if now_ms.saturating_sub(*since_ms) > CLOSING_PROMPT_MAX_MS {
                        self.hang_up(&mut out);
                    } else {
                        out.push(FeatureOutput::Media {
                            step: FeatureStep::FinalWait,
                            request: MediaRequest::Events,
                        });
                    }
                }
                _ => {}
            },
            FeatureInput::Ended => {
                self.ended = true;
                if self.result.is_empty() {
                    self.result = "the phone hung up first".into();
                }
                self.finish(&mut out);
            }
        }
        out
    }

    fn on_media(
        &mut self,
        now_ms: u64,
        step: FeatureStep,
        result: Result<MediaReply, String>,
        out: &mut Vec<FeatureOutput>,
    ) {
        match (step, result) {
            (FeatureStep::Create, Ok(_)) => out.push(FeatureOutput::Media {
                step: FeatureStep::Leg,
                request: MediaRequest::SetLeg {
                    leg: CALLER_LEG,
                    remote_sdp: Some(self.setup.offer_sdp.clone()),
                },
            }),
            (FeatureStep::Leg, Ok(MediaReply::Sdp(sdp))) => {
                out.push(FeatureOutput::Edge(EdgeRequest::Leg(Box::new(
                    LegRequest::Answer {
                        leg: self.setup.leg,
                        sdp,
                    },
                ))));
                self.begin(now_ms, out);
            }
            (FeatureStep::Create | FeatureStep::Leg, result) => {
                let reason = match result {
                    Err(e) => e,
                    Ok(r) => format!("unexpected answer {r:?}"),
                };
                self.result = format!("no media: {reason}");
                out.push(FeatureOutput::Edge(EdgeRequest::Leg(Box::new(
                    LegRequest::Reject {
                        leg: self.setup.leg,
                        status: 503,
                        reason: format!(
                            "Service Unavailable - no media relay for the feature code: {reason}"
                        ),
                    },
                ))));
                self.finish(out);
            }
            (FeatureStep::AskPin, _) => {
                self.phase = Phase::CollectingPin {
                    digits: String::new(),
                    seen: 0,
                    since_ms: now_ms,
                };
                out.push(FeatureOutput::Timer {
                    after_ms: DTMF_POLL_MS,
                });
            }
            (FeatureStep::Dtmf, Ok(MediaReply::Events(events))) => {
                self.on_digits(events, out);
            }
            (FeatureStep::Dtmf, _) => out.push(FeatureOutput::Timer {
                after_ms: DTMF_POLL_MS,
            }),
            (FeatureStep::Final, Err(_)) => self.hang_up(out),
            (FeatureStep::Final, Ok(_)) => out.push(FeatureOutput::Timer {
                after_ms: DTMF_POLL_MS,
            }),
            (FeatureStep::FinalWait, Ok(MediaReply::Events(events))) => {
                let finished = finished_count(&events);
                let before = match self.phase {
                    Phase::Closing {
                        finished_before, ..
                    } => finished_before,
                    _ => 0,
                };
                if finished > before {
                    self.hang_up(out);
                } else {
                    out.push(FeatureOutput::Timer {
                        after_ms: DTMF_POLL_MS,
                    });
                }
            }
            (FeatureStep::FinalWait, _) => self.hang_up(out),
            (FeatureStep::Remove, _) => {}
        }
    }

    fn begin(&mut self, _now_ms: u64, out: &mut Vec<FeatureOutput>) {
        let Some(agent) = self.snapshot.agent else {
            self.close(prompts::REFUSED, "A3: this phone belongs to no agent", out);
            return;
        };
        match self.setup.request.clone() {
            FeatureRequest::Login { pin: Some(pin) } => {
                out.push(FeatureOutput::CheckPin { agent, pin })
            }
            FeatureRequest::Login { pin: None } => out.push(FeatureOutput::Media {
                step: FeatureStep::AskPin,
                request: MediaRequest::Prompt {
                    leg: CALLER_LEG,
                    prompt: prompts::ASK_PIN.into(),
                },
            }),
            FeatureRequest::Ready { .. } | FeatureRequest::Unpause => {
                self.phase = Phase::Working;
                out.push(self.ledger(Command::Unpause {
                    tenant: self.setup.tenant,
                    user: agent,
                }));
            }
            FeatureRequest::Pause { reason } => {
                let index = reason.map_or(0, |r| r.saturating_sub(1) as usize);
                let Some(pause_type) = self.snapshot.pause_types.get(index).copied() else {
                    let why = format!("A5: no pause type has reason code {}", index + 1);
                    self.close(prompts::REFUSED, &why, out);
                    return;
                };
                self.phase = Phase::Working;
                out.push(self.ledger(Command::Pause {
                    tenant: self.setup.tenant,
                    user: agent,
                    pause_type,
                }));
            }
            FeatureRequest::Logout => {
                self.phase = Phase::Working;
                self.pending_logouts = self.snapshot.terminals.clone();
                self.next_logout(agent, out);
            }
        }
    }

    fn next_logout(&mut self, agent: UserId, out: &mut Vec<FeatureOutput>) {
        match self.pending_logouts.pop() {
            Some(terminal) => out.push(self.ledger(Command::Logout {
                tenant: self.setup.tenant,
                user: agent,
                terminal,
            })),
            None => self.close(prompts::LOGGED_OFF, "A1: logged out", out),
        }
    }

    fn on_digits(&mut self, events: Vec<crate::call::MediaEvent>, out: &mut Vec<FeatureOutput>) {
        self.finished_seen = self.finished_seen.max(finished_count(&events));
        let Phase::CollectingPin {
            digits,
            seen,
            since_ms,
        } = &mut self.phase
        else {
            return;
        };
        let dtmf: Vec<&crate::call::MediaEvent> = events
            .iter()
            .filter(|e| e.kind == "dtmf" && e.leg == CALLER_LEG)
            .collect();
        let mut done = false;
        for e in dtmf.iter().skip(*seen) {
            match e.digit.as_deref() {
                Some("#") => done = true,
                Some(d) if digits.len() < MAX_PIN_DIGITS => digits.push_str(d),
                _ => {}
            }
        }
        *seen = dtmf.len();
        let _ = since_ms;
        if done || digits.len() >= MAX_PIN_DIGITS {
            let pin = std::mem::take(digits);
            match self.snapshot.agent {
                Some(agent) => out.push(FeatureOutput::CheckPin { agent, pin }),
                None => self.close(prompts::REFUSED, "A3: this phone belongs to no agent", out),
            }
        } else {
            out.push(FeatureOutput::Timer {
                after_ms: DTMF_POLL_MS,
            });
        }
    }

    /// A ledger write on behalf of the agent's phone (A4: who caused it).
    fn ledger(&self, command: Command) -> FeatureOutput {
        FeatureOutput::Ledger(Box::new(Command::By {
            from: None,
            by: Author::Phone {
                device: self.setup.device,
            },
            inner: Box::new(command),
        }))
    }

    fn login(&mut self, out: &mut Vec<FeatureOutput>) {
        let Some(agent) = self.snapshot.agent else {
            return;
        };
        self.phase = Phase::Working;
        out.push(self.ledger(Command::Login {
            tenant: self.setup.tenant,
            user: agent,
            terminal: terminal(self.setup.device),
        }));
    }

    fn on_ledger(&mut self, result: Result<Outcome, WriteError>, out: &mut Vec<FeatureOutput>) {
        let refused = |e: &WriteError| match e {
            WriteError::Refused(r) => r.message.clone(),
            WriteError::Unavailable(why) => format!("the cluster did not answer: {why}"),
        };
        match (&self.setup.request, result) {
            (FeatureRequest::Login { .. }, Ok(_)) => {
                self.close(prompts::LOGGED_IN, "A1: logged in", out)
            }
            (FeatureRequest::Login { .. }, Err(e)) => {
                let why = refused(&e);
                self.close(prompts::REFUSED, &why, out)
            }
            (FeatureRequest::Ready { .. } | FeatureRequest::Unpause, Ok(_)) => {
                self.close(prompts::READY, "A5: ready", out)
            }
            (
                FeatureRequest::Ready { .. } | FeatureRequest::Unpause,
                Err(WriteError::Refused(r)),
            ) if r.code == crate::model::RefusalCode::NotPaused => {
                self.close(prompts::READY, "A5: already ready", out)
            }
            (FeatureRequest::Pause { .. }, Ok(Outcome::Session { deferred: true })) => {
                self.close(prompts::PAUSED, "A5: paused after the current call", out)
            }
            (FeatureRequest::Pause { .. }, Ok(_)) => self.close(prompts::PAUSED, "A5: paused", out),
            (FeatureRequest::Logout, Ok(_)) => {
                if let Some(agent) = self.snapshot.agent {
                    self.next_logout(agent, out);
                }
            }
            (_, Err(e)) => {
                let why = refused(&e);
                self.close(prompts::REFUSED, &why, out)
            }
        }
    }

    /// Plays the closing prompt; the call hangs up when it has played.
    fn close(&mut self, prompt: &str, result: &str, out: &mut Vec<FeatureOutput>) {
        self.result = result.to_string();
        self.phase = Phase::Closing {
            finished_before: self.finished_seen,
            since_ms: self.now_ms,
        };
        if self.ended {
            self.finish(out);
            return;
        }
        out.push(FeatureOutput::Media {
            step: FeatureStep::Final,
            request: MediaRequest::Prompt {
                leg: CALLER_LEG,
                prompt: prompt.to_string(),
            },
        });
    }

    fn hang_up(&mut self, out: &mut Vec<FeatureOutput>) {
        out.push(FeatureOutput::Edge(EdgeRequest::Hangup {
            leg: self.setup.leg,
        }));
        self.finish(out);
    }

    fn finish(&mut self, out: &mut Vec<FeatureOutput>) {
        if self.phase == Phase::Done {
            return;
        }
        self.phase = Phase::Done;
        out.push(FeatureOutput::Media {
            step: FeatureStep::Remove,
            request: MediaRequest::Remove,
        });
        out.push(FeatureOutput::Stop);
    }

    /// The record of the call (C4: feature codes are kept, for the audit of
    /// who logged in or paused from which phone).
    pub fn record(&self, now_ms: u64) -> ActivityRecord {
        let mut record = ActivityRecord {
            disposition: None,
            interventions: Vec::new(),
            id: self.setup.call.clone(),
            direction: Direction::Internal,
            queue: None,
            agent: self.snapshot.agent,
            caller: format!("device {}", self.setup.device),
            called: self.setup.dialled.clone(),
            started_at_ms: self.setup.arrived_at_ms,
            connected_at_ms: None,
            ended_at_ms: now_ms.max(self.setup.arrived_at_ms),
            closed_at_ms: now_ms.max(self.setup.arrived_at_ms),
            waiting_ms: 0,
            interaction_ms: 0,
            processing_ms: 0,
            outcome: ActivityOutcome::FeatureCode {
                result: self.result.clone(),
            },
            segments: Vec::new(),
            node: self.setup.node,
        };
        record.compute_times(self.setup.arrived_at_ms);
        record
    }
}
