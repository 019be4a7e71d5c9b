//! Agent sessions (A1, A4, A5) as data: each scenario is a list of steps,
//! either a command with the result it must get (at a given second) or the
//! session the agent must have at that point. One `check()` runs them all.

mod common;

use carillon_actors::ledger::{AfterActivity, Command, Outcome};
use carillon_actors::model::user::{Role, UserKind};
use carillon_actors::model::{PauseTypeId, QueueId, RefusalCode, UserId};
use common::{patched, user_spec, Fixture, NOW_MS};
use serde_json::json;
use std::collections::BTreeSet;

/// Who acts.
#[derive(Debug, Clone, Copy)]
enum Who {
    /// The first agent, a static member of `Sales`.
    StaticAgent,
    /// The second agent, no static membership.
    Agent,
    Admin,
    Supervisor,
    BackOffice,
    UcUser,
    /// An agent with neither panel nor app access.
    AgentWithoutPanel,
    /// An agent with app access only.
    AgentWithAppOnly,
    /// An agent marked inactive.
    InactiveAgent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Queue {
    Support,
    /// The first agent is a static member.
    Sales,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pause {
    Training,
    Lunch,
}

#[derive(Debug, Clone, Copy)]
enum Action {
    Login(&'static str),
    Logout(&'static str),
    CheckIn(Queue),
    CheckOut(Queue),
    Pause(Pause),
    Unpause,
    Begin(&'static str),
    End(&'static str),
}

/// What happens when the activities end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Pause(Pause),
    Logout,
}

/// The session an agent must have; `None`: logged out.
#[derive(Debug, Clone, Copy)]
struct Session {
    terminals: &'static [&'static str],
    queues: &'static [Queue],
    /// The pause and the second it started.
    paused: Option<(Pause, u64)>,
    pending: Option<Pending>,
    activities: &'static [&'static str],
}

const IDLE: Session = Session {
    terminals: &["panel"],
    queues: &[],
    paused: None,
    pending: None,
    activities: &[],
};

#[derive(Debug)]
enum Step {
    /// At `second`, `action` gets `result` (`Ok(deferred)`).
    Do(u64, Action, Result<bool, RefusalCode>),
    /// The session now.
    Is(Option<Session>),
}

fn ok(second: u64, action: Action) -> Step {
    Step::Do(second, action, Ok(false))
}

fn deferred(second: u64, action: Action) -> Step {
    Step::Do(second, action, Ok(true))
}

fn refused(action: Action, code: RefusalCode) -> Step {
    Step::Do(0, action, Err(code))
}

fn is(session: Session) -> Step {
    Step::Is(Some(session))
}

fn logged_out() -> Step {
    Step::Is(None)
}

struct World {
    f: Fixture,
    user: UserId,
}

impl World {
    fn new(who: Who) -> Self {
        let mut f = Fixture::new();
        let agent = |login: &str, patch| patched(&common::agent_spec(login), patch);
        let user = match who {
            Who::StaticAgent => f.agents[0],
            Who::Agent => f.agents[1],
            Who::Admin => f.admin,
            Who::Supervisor => f.supervisor,
            Who::BackOffice => f.back_office,
            Who::UcUser => f.uc_user,
            Who::AgentWithoutPanel => {
                let spec = agent("nopanel", json!({"panel_access": false}));
                f.add_user(spec, None, None).expect("user")
            }
            Who::AgentWithAppOnly => {
                let spec = agent(
                    "app",
                    json!({"panel_access": false, "mobile_app_access": true}),
                );
                f.add_user(spec, None, None).expect("user")
            }
            Who::InactiveAgent => {
                let spec = user_spec(UserKind::ContactCentre, &[Role::Agent], "gone");
                let spec = patched(&spec, json!({"active": false}));
                f.add_user(spec, None, None).expect("user")
            }
        };
        Self { f, user }
    }

    fn queue(&self, q: Queue) -> QueueId {
        match q {
            Queue::Support => self.f.queue,
            Queue::Sales => self.f.static_queue,
        }
    }

    fn pause(&self, p: Pause) -> PauseTypeId {
        match p {
            Pause::Training => self.f.pause,
            Pause::Lunch => self.f.lunch,
        }
    }

    fn command(&self, action: Action) -> Command {
        let (tenant, user) = (self.f.tenant, self.user);
        match action {
            Action::Login(t) => Command::Login {
                tenant,
                user,
                terminal: t.into(),
            },
            Action::Logout(t) => Command::Logout {
                tenant,
                user,
                terminal: t.into(),
            },
            Action::CheckIn(q) => Command::CheckIn {
                tenant,
                user,
                queue: self.queue(q),
            },
            Action::CheckOut(q) => Command::CheckOut {
                tenant,
                user,
                queue: self.queue(q),
            },
            Action::Pause(p) => Command::Pause {
                tenant,
                user,
                pause_type: self.pause(p),
            },
            Action::Unpause => Command::Unpause { tenant, user },
            Action::Begin(a) => Command::BeginActivity {
                tenant,
                user,
                activity: a.into(),
            },
            Action::End(a) => Command::EndActivity {
                tenant,
                user,
                activity: a.into(),
            },
        }
    }
}

fn at(second: u64) -> u64 {
    NOW_MS + second * 1_000
}

/// Runs a scenario; `name` labels its failures.
fn check(name: &str, who: Who, steps: &[Step]) {
    let mut w = World::new(who);
    for (index, step) in steps.iter().enumerate() {
        let label = format!("{name}, step {index} {step:?}");
        match step {
            Step::Do(second, action, expected) => {
                let before = w.f.ledger.clone();
                let result = w.f.run_at(at(*second), w.command(*action));
                let result = result.map(|outcome| match outcome {
                    Outcome::Session { deferred } => deferred,
                    other => panic!("{label}: {other:?}"),
                });
                assert_eq!(&result, expected, "{label}");
                if result.is_err() {
                    assert_eq!(w.f.ledger, before, "{label}: a refusal changes nothing");
                }
                w.f.ledger.check_invariants();
            }
            Step::Is(expected) => {
                let actual = w.f.state().session(w.user);
                let Some(e) = expected else {
                    assert!(actual.is_none(), "{label}: logged out, got {actual:?}");
                    continue;
                };
                let s = actual.unwrap_or_else(|| panic!("{label}: logged out"));
                let strings =
                    |list: &[&str]| list.iter().map(|t| t.to_string()).collect::<BTreeSet<_>>();
                assert_eq!(s.terminals, strings(e.terminals), "{label}: terminals");
                assert_eq!(s.activities, strings(e.activities), "{label}: activities");
                let queues: BTreeSet<QueueId> = e.queues.iter().map(|q| w.queue(*q)).collect();
                assert_eq!(s.checked_in, queues, "{label}: check-ins");
                let paused = e.paused.map(|(p, second)| (w.pause(p), at(second)));
                assert_eq!(
                    s.pause.map(|p| (p.pause_type, p.since_ms)),
                    paused,
                    "{label}: pause"
                );
                let pending = e.pending.map(|p| match p {
                    Pending::Pause(p) => AfterActivity::Pause {
                        pause_type: w.pause(p),
                    },
                    Pending::Logout => AfterActivity::Logout,
                });
                assert_eq!(s.after_activity, pending, "{label}: after the activity");
            }
        }
    }
}

use Action::{Begin, CheckIn, CheckOut, End, Login, Logout, Unpause};

#[test]
fn two_terminals_then_closing_one_keeps_check_ins() {
    check(
        "two terminals",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(1, Login("phone")),
            ok(2, CheckIn(Queue::Support)),
            ok(3, Logout("panel")),
            is(Session {
                terminals: &["phone"],
                queues: &[Queue::Support],
                ..IDLE
            }),
            refused(Logout("panel"), RefusalCode::NotLoggedIn),
            ok(4, Logout("phone")),
            logged_out(),
            refused(CheckIn(Queue::Support), RefusalCode::NotLoggedIn),
        ],
    );
}

#[test]
fn the_last_logout_checks_out_every_queue_and_static_membership_returns_at_login() {
    check(
        "static member",
        Who::StaticAgent,
        &[
            ok(0, Login("panel")),
            is(Session {
                queues: &[Queue::Sales],
                ..IDLE
            }),
            ok(1, CheckIn(Queue::Support)),
            ok(2, CheckOut(Queue::Sales)),
            is(Session {
                queues: &[Queue::Support],
                ..IDLE
            }),
            ok(3, Logout("panel")),
            logged_out(),
            ok(4, Login("panel")),
            is(Session {
                queues: &[Queue::Sales],
                ..IDLE
            }),
        ],
    );
    check(
        "dynamic member",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            is(IDLE),
            ok(1, CheckIn(Queue::Support)),
            ok(2, CheckIn(Queue::Sales)),
            ok(3, Logout("panel")),
            ok(4, Login("panel")),
            is(IDLE),
        ],
    );
}

#[test]
fn a_pause_during_an_activity_starts_when_the_last_activity_ends() {
    check(
        "one call",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(10, Begin("call")),
            deferred(20, Action::Pause(Pause::Lunch)),
            is(Session {
                pending: Some(Pending::Pause(Pause::Lunch)),
                activities: &["call"],
                ..IDLE
            }),
            ok(70, End("call")),
            is(Session {
                paused: Some((Pause::Lunch, 70)),
                ..IDLE
            }),
            refused(Action::Pause(Pause::Training), RefusalCode::AlreadyPaused),
        ],
    );
    check(
        "call and chat",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(1, Begin("call")),
            ok(2, Begin("chat")),
            deferred(3, Action::Pause(Pause::Training)),
            ok(30, End("call")),
            is(Session {
                pending: Some(Pending::Pause(Pause::Training)),
                activities: &["chat"],
                ..IDLE
            }),
            ok(50, End("chat")),
            is(Session {
                paused: Some((Pause::Training, 50)),
                ..IDLE
            }),
        ],
    );
    check(
        "no activity",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(5, Action::Pause(Pause::Training)),
            is(Session {
                paused: Some((Pause::Training, 5)),
                ..IDLE
            }),
            ok(9, Unpause),
            is(IDLE),
        ],
    );
}

#[test]
fn unpause_cancels_a_pending_pause() {
    check(
        "cancelled pause",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(1, Begin("call")),
            deferred(2, Action::Pause(Pause::Lunch)),
            ok(3, Unpause),
            is(Session {
                activities: &["call"],
                ..IDLE
            }),
            ok(4, End("call")),
            is(IDLE),
            refused(Unpause, RefusalCode::NotPaused),
        ],
    );
}

#[test]
fn a_logout_during_an_activity_waits_for_its_end() {
    check(
        "deferred logout",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(1, CheckIn(Queue::Support)),
            ok(2, Begin("call")),
            deferred(3, Logout("panel")),
            is(Session {
                queues: &[Queue::Support],
                pending: Some(Pending::Logout),
                activities: &["call"],
                ..IDLE
            }),
            ok(60, End("call")),
            logged_out(),
        ],
    );
    check(
        "logout while paused",
        Who::Agent,
        &[
            ok(0, Login("panel")),
            ok(1, Action::Pause(Pause::Lunch)),
            ok(2, Logout("panel")),
            logged_out(),
            ok(3, Login("panel")),
            is(IDLE),
        ],
    );
}

#[test]
fn only_active_agents_with_panel_or_app_access_log_in() {
    for who in [
        Who::Admin,
        Who::Supervisor,
        Who::BackOffice,
        Who::UcUser,
        Who::AgentWithoutPanel,
        Who::InactiveAgent,
    ] {
        check(
            &format!("{who:?}"),
            who,
            &[
                refused(Login("panel"), RefusalCode::AgentCannotLogIn),
                logged_out(),
            ],
        );
    }
    check(
        "app only",
        Who::AgentWithAppOnly,
        &[
            ok(0, Login("app")),
            is(Session {
                terminals: &["app"],
                ..IDLE
            }),
        ],
    );
}
