//! Who changed an agent's state, and the state every node reads (A4, A8):
//! a session command wrapped in `Command::By` leaves its author and what it
//! did as the agent's last change (kept after logout, not left by a refused
//! command, dropped with the user); the agent actor's `SetReachable` makes
//! the agent disconnected and reachable again, once per change.

mod common;

use carillon_actors::ledger::{AgentStatus, Command, Outcome};
use carillon_actors::model::agent_status::{
    AgentState, Author, SessionAction, SessionChange, SystemRule,
};
use carillon_actors::model::{DeviceId, RefusalCode, UserId};
use common::Fixture;

const T0: u64 = 5_000_000;

fn by(author: Author, command: Command) -> Command {
    Command::By {
        from: None,
        by: author,
        inner: Box::new(command),
    }
}

fn status(f: &Fixture, user: UserId) -> AgentStatus {
    f.state().agent_status(user).expect("an agent")
}

fn last(f: &Fixture, user: UserId) -> (u64, Author, SessionAction) {
    let SessionChange { at_ms, by, what } = f.state().last_change(user).cloned().expect("a change");
    (at_ms, by, what)
}

#[test]
fn session_changes_name_who_caused_them() {
    let mut f = Fixture::new();
    let (tenant, agent, supervisor) = (f.tenant, f.agents[1], f.supervisor);
    let me = Author::User { user: agent };
    let boss = Author::User { user: supervisor };
    assert_eq!(status(&f, agent).state, AgentState::LoggedOut);
    assert_eq!(status(&f, agent).last_change, None);

    let login = Command::Login {
        tenant,
        user: agent,
        terminal: "panel".into(),
    };
    f.run_at(T0, by(me.clone(), login)).expect("login");
    assert_eq!(status(&f, agent).state, AgentState::Idle);
    let logged_in = SessionAction::LoggedIn {
        terminal: "panel".into(),
    };
    assert_eq!(last(&f, agent), (T0, me.clone(), logged_in));

    // A supervisor forces a pause (S2).
    let pause = Command::Pause {
        tenant,
        user: agent,
        pause_type: f.pause,
    };
    f.run_at(T0 + 10, by(boss.clone(), pause.clone()))
        .expect("pause");
    let paused = SessionAction::Paused {
        pause_type: f.pause,
        deferred: false,
    };
    assert_eq!(status(&f, agent).state, AgentState::Paused);
    assert_eq!(last(&f, agent), (T0 + 10, boss.clone(), paused.clone()));

    // A refused command changes nothing, its author included.
    assert_eq!(
        f.run_at(T0 + 20, by(me.clone(), pause)),
        Err(RefusalCode::AlreadyPaused)
    );
    assert_eq!(last(&f, agent), (T0 + 10, boss, paused));

    // The agent's phone unpauses it by feature code (A3).
    let phone = Author::Phone {
        device: DeviceId(77),
    };
    let unpause = Command::Unpause {
        tenant,
        user: agent,
    };
    f.run_at(T0 + 30, by(phone.clone(), unpause))
        .expect("unpause");
    assert_eq!(status(&f, agent).state, AgentState::Idle);
    assert_eq!(last(&f, agent), (T0 + 30, phone, SessionAction::Unpaused));

    // A pause asked for during an activity waits for its end (A5).
    f.run_at(
        T0 + 40,
        Command::BeginActivity {
            tenant,
            user: agent,
            activity: "a".into(),
        },
    )
    .expect("activity");
    let pause_later = Command::Pause {
        tenant,
        user: agent,
        pause_type: f.lunch,
    };
    assert_eq!(
        f.run_at(T0 + 50, by(me.clone(), pause_later)),
        Ok(Outcome::Session { deferred: true })
    );
    let deferred = SessionAction::Paused {
        pause_type: f.lunch,
        deferred: true,
    };
    assert_eq!(last(&f, agent), (T0 + 50, me.clone(), deferred));
    f.run_at(
        T0 + 60,
        Command::EndActivity {
            tenant,
            user: agent,
            activity: "a".into(),
        },
    )
    .expect("end");
    f.run_at(
        T0 + 70,
        by(
            me,
            Command::Unpause {
                tenant,
                user: agent,
            },
        ),
    )
    .expect("unpause");

    // The daily logout (A2) is the system's; the change outlives the session.
    let daily = Author::System {
        rule: SystemRule::DailyLogout,
    };
    let logout = Command::Logout {
        tenant,
        user: agent,
        terminal: "panel".into(),
    };
    f.run_at(T0 + 80, by(daily.clone(), logout))
        .expect("logout");
    assert!(f.state().session(agent).is_none());
    let logged_out = SessionAction::LoggedOut {
        terminal: "panel".into(),
        deferred: false,
    };
    assert_eq!(status(&f, agent).state, AgentState::LoggedOut);
    assert_eq!(last(&f, agent), (T0 + 80, daily, logged_out));

    // Deleting the user drops its change (checked by the ledger's invariants).
    f.ok(Command::DeleteUser {
        tenant,
        user: agent,
    });
    assert!(f.state().last_change(agent).is_none());
    f.ledger.check_invariants();
}

#[test]
fn the_agent_actor_records_a_disconnection_and_its_end_once() {
    let mut f = Fixture::new();
    let (tenant, agent) = (f.tenant, f.agents[1]);
    let reach = |reachable| Command::SetReachable {
        tenant,
        user: agent,
        reachable,
    };
    // Without a session there is nothing to record.
    assert_eq!(f.run_at(T0, reach(false)), Ok(Outcome::Done));
    assert_eq!(status(&f, agent).unreachable_since_ms, None);
    assert!(f.state().last_change(agent).is_none());
    assert_eq!(
        f.run_at(
            T0,
            Command::SetReachable {
                tenant,
                user: UserId(999_999),
                reachable: false
            }
        ),
        Err(RefusalCode::NotFound)
    );

    f.run_at(
        T0,
        Command::Login {
            tenant,
            user: agent,
            terminal: "panel".into(),
        },
    )
    .expect("login");
    let system = Author::System {
        rule: SystemRule::Reachability,
    };
    f.run_at(T0 + 100, reach(false)).expect("unreachable");
    let s = status(&f, agent);
    assert_eq!(
        (s.state, s.unreachable_since_ms),
        (AgentState::Disconnected, Some(T0 + 100))
    );
    assert_eq!(
        last(&f, agent),
        (T0 + 100, system.clone(), SessionAction::Disconnected)
    );
    // Said again, it changes nothing: the first time stays.
    f.run_at(T0 + 200, reach(false)).expect("again");
    assert_eq!(status(&f, agent).unreachable_since_ms, Some(T0 + 100));
    assert_eq!(last(&f, agent).0, T0 + 100);
    // A pause is shown over the disconnection.
    f.ok(Command::Pause {
        tenant,
        user: agent,
        pause_type: f.pause,
    });
    assert_eq!(status(&f, agent).state, AgentState::Paused);
    f.ok(Command::Unpause {
        tenant,
        user: agent,
    });
    f.run_at(T0 + 300, reach(true)).expect("reachable");
    let s = status(&f, agent);
    assert_eq!((s.state, s.unreachable_since_ms), (AgentState::Idle, None));
    assert_eq!(
        last(&f, agent),
        (T0 + 300, system, SessionAction::Reconnected)
    );
    // Not an agent: no status.
    assert!(f.state().agent_status(f.admin).is_none());
}
