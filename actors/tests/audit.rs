//! The audit trail as the ledger keeps it: who, from where, what, before and
//! after; never a secret; refused commands and the call path leave no
//! record; each log bounded; a lockout by the front door and a login by
//! their own actors.

mod common;

use carillon_actors::ledger::{AuditRecord, Command, TokenOwner, AUDIT_KEPT, PLATFORM};
use carillon_actors::model::agent_status::{Author, SystemRule};
use carillon_actors::model::{OperatorId, TenantId, UserId};
use common::{agent_spec, password, pin, sip_phone, sip_secret, Fixture, ADMIN_PASSWORD, NOW_MS};
use serde_json::json;

fn by(author: Author, from: &str, inner: Command) -> Command {
    Command::By {
        by: author,
        from: Some(from.into()),
        inner: Box::new(inner),
    }
}

fn log(f: &Fixture, tenant: TenantId) -> Vec<AuditRecord> {
    let log = f.ledger.audit_log(tenant).expect("a log");
    log.since(0).1.map(|(_, r)| r.clone()).collect()
}

fn last(f: &Fixture, tenant: TenantId) -> AuditRecord {
    log(f, tenant).pop().expect("a record")
}

#[test]
fn a_change_is_recorded_with_its_actor_source_before_and_after() {
    let mut f = Fixture::new();
    let t = f.tenant;
    let admin = Author::User { user: f.admin };
    let before = f.ledger.audit_log(t).map_or(0, |l| l.last_seq());
    let user = f.create(by(
        admin.clone(),
        "192.0.2.7",
        Command::CreateUser {
            tenant: t,
            spec: agent_spec("agent.audit"),
            password: Some(password("Audit-Password-1!")),
            pin_fingerprint: Some(pin("55123")),
        },
    ));
    let created = last(&f, t);
    assert_eq!(created.id, (before + 1).to_string());
    assert_eq!(
        (
            created.actor.clone(),
            created.source.as_deref(),
            created.action.as_str()
        ),
        (admin.clone(), Some("192.0.2.7"), "create_user")
    );
    let object = created.object.clone().expect("object");
    assert_eq!(
        (object.kind.as_str(), object.id),
        ("user", Some(user.to_string()))
    );
    assert_eq!(created.before, None, "nothing before a creation");
    let after = created.after.clone().expect("after");
    assert_eq!(after["login"], "agent.audit", "{after}");
    assert_eq!(
        (after["has_password"].clone(), after["has_pin"].clone()),
        (json!(true), json!(true))
    );

    // A password change: the user before and after, no secret in either.
    f.ok(by(
        admin.clone(),
        "192.0.2.7",
        Command::SetUserPassword {
            tenant: t,
            user: UserId(user),
            password: password("Other-Password-2!"),
        },
    ));
    let changed = last(&f, t);
    assert_eq!(changed.action, "set_user_password");
    assert!(changed.before.is_some() && changed.after.is_some());
    // A device with a SIP secret; then the user deleted (nothing after).
    f.create(by(
        admin.clone(),
        "192.0.2.7",
        Command::CreateDevice {
            tenant: t,
            spec: sip_phone("auditphone", "177"),
            sip_secret: Some(sip_secret("auditphone")),
        },
    ));
    f.ok(by(
        admin,
        "192.0.2.7",
        Command::DeleteUser {
            tenant: t,
            user: UserId(user),
        },
    ));
    let deleted = last(&f, t);
    assert_eq!(
        (
            deleted.action.as_str(),
            deleted.after.is_none(),
            deleted.before.is_some()
        ),
        ("delete_user", true, true)
    );
    let text = serde_json::to_string(&log(&f, t)).expect("json");
    for secret in [
        "Audit-Password-1!",
        "Other-Password-2!",
        "55123",
        ADMIN_PASSWORD,
        "$argon2",
        "phc",
        "ha1",
    ] {
        assert!(!text.contains(secret), "no record holds {secret:?}");
    }
}

#[test]
fn refusals_and_the_call_path_leave_no_record() {
    let mut f = Fixture::new();
    let t = f.tenant;
    let seq = |f: &Fixture| f.ledger.audit_log(t).map_or(0, |l| l.last_seq());
    let start = seq(&f);
    let refused = f.run(by(
        Author::User { user: f.admin },
        "192.0.2.7",
        Command::DeleteUser {
            tenant: t,
            user: UserId(999_999),
        },
    ));
    assert!(refused.is_err());
    f.ok(Command::Login {
        tenant: t,
        user: f.agents[0],
        terminal: "panel".into(),
    });
    assert_eq!(
        seq(&f),
        start,
        "neither a refusal nor an agent's login is audited"
    );
}

#[test]
fn logins_lockouts_and_the_platform_have_their_own_actors_and_logs() {
    let mut f = Fixture::new();
    let t = f.tenant;
    let owner = TokenOwner::User {
        tenant: t,
        user: f.admin,
    };
    let session = f.create(Command::OpenLoginSession {
        owner,
        expires_at_ms: NOW_MS + 1_000,
        source: "198.51.100.4".into(),
        user_agent: "panel".into(),
    });
    let opened = last(&f, t);
    assert_eq!(
        (
            opened.actor,
            opened.source.as_deref(),
            opened.action.as_str()
        ),
        (
            Author::User { user: f.admin },
            Some("198.51.100.4"),
            "open_login_session"
        )
    );
    assert_eq!(opened.object.and_then(|o| o.id), Some(session.to_string()));
    let login = f
        .state()
        .find_user(f.admin)
        .expect("admin")
        .spec
        .login
        .clone();
    f.ok(Command::LockLogin {
        login: login.to_uppercase(),
        until_ms: NOW_MS + 60_000,
        failures: 10,
        last_source: "203.0.113.9".into(),
    });
    let locked = last(&f, t);
    assert_eq!(
        (
            locked.actor,
            locked.source.as_deref(),
            locked.action.as_str()
        ),
        (
            Author::System {
                rule: SystemRule::FrontDoor
            },
            Some("203.0.113.9"),
            "lock_login"
        )
    );
    assert_eq!(locked.after.expect("lockout")["failures"], 10);

    // Cluster membership goes to the platform's log, with what it changed.
    let operator = Author::Operator {
        operator: OperatorId(1),
    };
    let before = f.ledger.platform_audit().last_seq();
    f.ok(by(
        operator.clone(),
        "127.0.0.1",
        Command::RecordAudit {
            tenant: None,
            object: Some("4".into()),
            before: None,
            after: Some(json!({"id": 4, "raft_addr": "127.0.0.14:7000"})),
        },
    ));
    let member = last(&f, PLATFORM);
    assert_eq!(f.ledger.platform_audit().last_seq(), before + 1);
    assert_eq!(
        (
            member.actor,
            member.action.as_str(),
            member.object.map(|o| o.kind)
        ),
        (operator, "record_audit", Some("member".to_string()))
    );
}

#[test]
fn a_log_keeps_its_last_records_only() {
    let mut f = Fixture::new();
    let t = f.tenant;
    let admin = Author::User { user: f.admin };
    let start = f.ledger.audit_log(t).map_or(0, |l| l.last_seq());
    for i in 0..AUDIT_KEPT + 10 {
        f.ok(by(
            admin.clone(),
            "192.0.2.7",
            Command::RenameTenant {
                tenant: t,
                name: format!("Tenant {i}"),
            },
        ));
    }
    let kept = f.ledger.audit_log(t).expect("log");
    let (first, records) = kept.since(0);
    assert_eq!(records.count(), AUDIT_KEPT);
    assert_eq!(kept.last_seq(), start + AUDIT_KEPT as u64 + 10);
    assert_eq!(first, Some(kept.last_seq() - AUDIT_KEPT as u64 + 1));
    let renamed = last(&f, t);
    assert_eq!(
        (
            renamed.before.expect("before")["view"]["name"].clone(),
            renamed.after.expect("after")["view"]["name"].clone()
        ),
        (
            json!(format!("Tenant {}", AUDIT_KEPT + 8)),
            json!(format!("Tenant {}", AUDIT_KEPT + 9))
        )
    );
}
