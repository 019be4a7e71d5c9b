//! Agent sessions (A1, A5): terminals, check-ins, static members, pauses and
//! "after this call" intents.

mod common;

use carillon_actors::ledger::{AfterActivity, Command, Outcome};
use carillon_actors::model::{QueueId, RefusalCode, UserId};
use common::{queue_spec, Fixture, NOW_MS};

fn agent(f: &mut Fixture, login: &str) -> UserId {
    let mut spec = common::user(
        carillon_actors::model::user::UserKind::ContactCentre,
        &[carillon_actors::model::user::Role::Agent],
        login,
    );
    spec.panel_access = true;
    f.add_user(spec, None, None).expect("agent")
}

fn at(f: &mut Fixture, now_ms: u64, command: Command) -> Result<Outcome, RefusalCode> {
    f.ledger.execute(command, now_ms).map_err(|r| r.code)
}

#[test]
fn closing_one_of_two_terminals_keeps_check_ins_and_the_last_logout_checks_out() {
    let mut f = Fixture::new();
    let a = agent(&mut f, "multi");
    let t = f.tenant;
    f.run(Command::Login {
        tenant: t,
        user: a,
        terminal: "panel".into(),
    })
    .expect("login 1");
    f.run(Command::Login {
        tenant: t,
        user: a,
        terminal: "phone".into(),
    })
    .expect("login 2");
    f.run(Command::CheckIn {
        tenant: t,
        user: a,
        queue: f.queue,
    })
    .expect("check in");
    f.run(Command::Logout {
        tenant: t,
        user: a,
        terminal: "panel".into(),
    })
    .expect("close one");
    let session = f
        .ledger
        .tenant(t)
        .expect("t")
        .session(a)
        .expect("still logged in")
        .clone();
    assert!(
        session.checked_in.contains(&f.queue),
        "closing one terminal changes nothing"
    );
    f.run(Command::Logout {
        tenant: t,
        user: a,
        terminal: "phone".into(),
    })
    .expect("last logout");
    assert!(
        f.ledger.tenant(t).expect("t").session(a).is_none(),
        "logout checks out of every queue"
    );
}

#[test]
fn static_members_are_checked_in_at_every_login_and_never_checked_out_automatically() {
    let mut f = Fixture::new();
    let a = agent(&mut f, "static");
    let t = f.tenant;
    let mut spec = queue_spec("Static");
    spec.static_members.insert(a);
    let q = QueueId(f.create(Command::CreateQueue { tenant: t, spec }));
    for _ in 0..2 {
        f.run(Command::Login {
            tenant: t,
            user: a,
            terminal: "panel".into(),
        })
        .expect("login");
        assert!(f
            .ledger
            .tenant(t)
            .expect("t")
            .session(a)
            .expect("session")
            .checked_in
            .contains(&q));
        f.run(Command::Logout {
            tenant: t,
            user: a,
            terminal: "panel".into(),
        })
        .expect("logout");
    }
    let queue = f
        .ledger
        .tenant(t)
        .expect("t")
        .queues()
        .find(|x| x.id == q)
        .expect("queue")
        .clone();
    assert!(
        queue.spec.static_members.contains(&a),
        "membership stays in the configuration"
    );
}

#[test]
fn a_pause_asked_for_during_an_activity_starts_when_it_ends() {
    let mut f = Fixture::new();
    let a = agent(&mut f, "busy");
    let t = f.tenant;
    f.run(Command::Login {
        tenant: t,
        user: a,
        terminal: "panel".into(),
    })
    .expect("login");
    f.run(Command::BeginActivity {
        tenant: t,
        user: a,
        activity: "call-1".into(),
    })
    .expect("begin");
    assert_eq!(
        f.run(Command::Pause {
            tenant: t,
            user: a,
            pause_type: f.pause
        }),
        Ok(Outcome::Session { deferred: true })
    );
    let session = f
        .ledger
        .tenant(t)
        .expect("t")
        .session(a)
        .expect("s")
        .clone();
    assert_eq!(session.pause, None);
    assert_eq!(
        session.after_activity,
        Some(AfterActivity::Pause {
            pause_type: f.pause
        })
    );
    let end_ms = NOW_MS + 60_000;
    at(
        &mut f,
        end_ms,
        Command::EndActivity {
            tenant: t,
            user: a,
            activity: "call-1".into(),
        },
    )
    .expect("end");
    let pause = f
        .ledger
        .tenant(t)
        .expect("t")
        .session(a)
        .expect("s")
        .pause
        .expect("paused");
    assert_eq!((pause.pause_type, pause.since_ms), (f.pause, end_ms));
}

#[test]
fn unpause_cancels_a_pending_pause_and_a_logout_during_an_activity_waits_for_it() {
    let mut f = Fixture::new();
    let a = agent(&mut f, "pending");
    let t = f.tenant;
    f.run(Command::Login {
        tenant: t,
        user: a,
        terminal: "panel".into(),
    })
    .expect("login");
    f.run(Command::BeginActivity {
        tenant: t,
        user: a,
        activity: "call-1".into(),
    })
    .expect("begin");
    f.run(Command::Pause {
        tenant: t,
        user: a,
        pause_type: f.pause,
    })
    .expect("deferred pause");
    f.run(Command::Unpause { tenant: t, user: a })
        .expect("cancel the pending pause");
    assert_eq!(
        f.ledger
            .tenant(t)
            .expect("t")
            .session(a)
            .expect("s")
            .after_activity,
        None
    );
    assert_eq!(
        f.run(Command::Logout {
            tenant: t,
            user: a,
            terminal: "panel".into()
        }),
        Ok(Outcome::Session { deferred: true })
    );
    assert!(
        f.ledger.tenant(t).expect("t").session(a).is_some(),
        "still in the call"
    );
    f.run(Command::EndActivity {
        tenant: t,
        user: a,
        activity: "call-1".into(),
    })
    .expect("end");
    assert!(
        f.ledger.tenant(t).expect("t").session(a).is_none(),
        "logged out after the call"
    );
}

#[test]
fn only_agents_with_panel_or_app_access_log_in() {
    let mut f = Fixture::new();
    let t = f.tenant;
    assert_eq!(
        f.run(Command::Login {
            tenant: t,
            user: f.admin,
            terminal: "p".into()
        }),
        Err(RefusalCode::AgentCannotLogIn)
    );
    assert_eq!(
        f.run(Command::Login {
            tenant: t,
            user: f.back_office,
            terminal: "p".into()
        }),
        Err(RefusalCode::AgentCannotLogIn)
    );
    let mut spec = common::user(
        carillon_actors::model::user::UserKind::ContactCentre,
        &[carillon_actors::model::user::Role::Agent],
        "nopanel",
    );
    spec.panel_access = false;
    let no_panel = f.add_user(spec, None, None).expect("agent");
    assert_eq!(
        f.run(Command::Login {
            tenant: t,
            user: no_panel,
            terminal: "p".into()
        }),
        Err(RefusalCode::AgentCannotLogIn),
        "no panel access"
    );
    assert!(
        f.run(Command::Login {
            tenant: t,
            user: f.agents[0],
            terminal: "p".into()
        })
        .is_ok(),
        "an agent with panel access logs in"
    );
}
