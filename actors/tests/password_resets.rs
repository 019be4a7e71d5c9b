//! Password recovery in the ledger (U5): a reset is used once and expires;
//! completing it sets the password, ends the user's sessions and revokes
//! its API tokens; a user holds at most three; each step is audited.

mod common;

use carillon_actors::ledger::{Command, TokenOwner};
use carillon_actors::model::RefusalCode;
use common::{password, Fixture, NOW_MS};

#[test]
fn a_reset_is_used_once_expires_and_ends_the_users_tokens() {
    let mut f = Fixture::new();
    let (t, user) = (f.tenant, f.admin);
    let owner = TokenOwner::User { tenant: t, user };
    let issue = |hash: &str, ttl: u64| Command::IssuePasswordReset {
        tenant: t,
        user,
        token_hash: hash.into(),
        expires_at_ms: NOW_MS + ttl,
    };
    let complete = |hash: &str| Command::CompletePasswordReset {
        token_hash: hash.into(),
        password: password("Reset-Password-9!"),
    };
    f.ok(Command::OpenLoginSession {
        owner,
        expires_at_ms: NOW_MS + 10_000,
        source: "192.0.2.1".into(),
        user_agent: "panel".into(),
    });
    f.ok(Command::CreateApiToken {
        owner,
        name: "robot".into(),
        token_hash: "abc".into(),
    });
    assert_eq!(
        f.run(complete("nothing")),
        Err(RefusalCode::ResetTokenInvalid)
    );
    f.ok(issue("h1", 60_000));
    let before = f.state().find_user(user).expect("user").password.clone();
    f.ok(complete("h1"));
    assert_ne!(f.state().find_user(user).expect("user").password, before);
    assert_eq!(f.ledger.login_sessions_of(owner, NOW_MS).count(), 0);
    assert!(f.ledger.api_tokens_of(owner).all(|t| t.revoked));
    assert_eq!(f.run(complete("h1")), Err(RefusalCode::ResetTokenUsed));
    // One a minute per user.
    let minute = 60_000;
    assert_eq!(f.run(issue("soon", minute)), Err(RefusalCode::ResetTooSoon));
    let issue_at = |hash: &str, at: u64, ttl: u64| Command::IssuePasswordReset {
        tenant: t,
        user,
        token_hash: hash.into(),
        expires_at_ms: at + ttl,
    };
    f.run_at(NOW_MS + minute, issue_at("h2", NOW_MS + minute, 10))
        .expect("issued");
    assert_eq!(
        f.run_at(NOW_MS + minute + 10, complete("h2")),
        Err(RefusalCode::ResetTokenExpired)
    );
    // At most three open: the fourth drops the oldest.
    for (i, hash) in ["a", "b", "c", "d"].iter().enumerate() {
        let at = NOW_MS + (i as u64 + 2) * minute;
        f.run_at(at, issue_at(hash, at, 10 * minute))
            .expect("issued");
    }
    let later = NOW_MS + 6 * minute;
    assert_eq!(
        f.run_at(later, complete("a")),
        Err(RefusalCode::ResetTokenInvalid)
    );
    f.run_at(later, complete("d")).expect("the newest works");
    assert_eq!(
        f.run_at(later, complete("c")),
        Err(RefusalCode::ResetTokenInvalid),
        "completing one ends the user's other links"
    );
    // A password set another way ends the open links too.
    let again = later + minute;
    f.run_at(again, issue_at("e", again, 10 * minute))
        .expect("issued");
    f.run_at(
        again,
        Command::SetUserPassword {
            tenant: t,
            user,
            password: password("Admin-Set-Password-3!"),
        },
    )
    .expect("set");
    assert_eq!(
        f.run_at(again, complete("e")),
        Err(RefusalCode::ResetTokenInvalid)
    );
    // Audited: issued by the front door, completed by the user.
    let log = f.ledger.audit_log(t).expect("log");
    let actions: Vec<String> = log.since(0).1.map(|(_, r)| r.action.clone()).collect();
    assert!(actions.iter().any(|a| a == "issue_password_reset"));
    let done = log
        .since(0)
        .1
        .filter(|(_, r)| r.action == "complete_password_reset")
        .count();
    assert_eq!(done, 2);
}
