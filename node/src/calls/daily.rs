//! A2 "requires daily login": a user with it set is logged out when its
//! branch's local day (UTC without a branch) is no longer the day it logged
//! in. The leader checks every [`CHECK_EVERY`]; a logout asked for during a
//! call takes effect when the call ends (A5, the ledger's rule).

use std::time::Duration;

use carillon_actors::ledger::{Command, Ledger};
use carillon_actors::model::agent_status::{Author, SystemRule};
use carillon_actors::model::ids::{TenantId, UserId};
use carillon_consensus::{Clock, CommandId, Consensus};
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// How often the leader looks.
pub const CHECK_EVERY: Duration = Duration::from_secs(60);

/// A logout that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyLogout {
    /// Tenant.
    pub tenant: TenantId,
    /// User.
    pub user: UserId,
    /// Terminal.
    pub terminal: String,
    /// The local date it logged in on (names the command, so a retry is one).
    pub date: String,
}

fn local_date(ms: u64, zone: &TimeZone) -> Option<jiff::civil::Date> {
    let ts = Timestamp::from_millisecond(i64::try_from(ms).ok()?).ok()?;
    Some(ts.to_zoned(zone.clone()).date())
}

/// The logouts due at `now_ms`; `zone` resolves an IANA name.
pub fn due(
    ledger: &Ledger,
    now_ms: u64,
    zone: impl Fn(&str) -> Option<TimeZone>,
) -> Vec<DailyLogout> {
    let mut due = Vec::new();
    for tenant in ledger.tenants() {
        let Some(t) = ledger.tenant(tenant.id) else {
            continue;
        };
        for session in t.sessions() {
            let Some(user) = t.find_user(session.user) else {
                continue;
            };
            if !user.spec.requires_daily_login || session.terminals.is_empty() {
                continue;
            }
            let name = user
                .spec
                .branch
                .and_then(|b| t.branches().find(|x| x.id == b))
                .map(|b| b.spec.timezone.clone())
                .unwrap_or_else(|| "UTC".into());
            let tz = zone(&name).unwrap_or(TimeZone::UTC);
            let (Some(then), Some(today)) = (
                local_date(session.logged_in_at_ms, &tz),
                local_date(now_ms, &tz),
            ) else {
                continue;
            };
            if then < today {
                for terminal in &session.terminals {
                    due.push(DailyLogout {
                        tenant: tenant.id,
                        user: session.user,
                        terminal: terminal.clone(),
                        date: then.to_string(),
                    });
                }
            }
        }
    }
    due
}

/// Runs the check on this node (it acts only while it leads).
pub fn spawn(consensus: Consensus<Ledger>, clock: std::sync::Arc<dyn Clock>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK_EVERY).await;
            let status = consensus.status().await;
            if status.leader != Some(status.node_id) {
                continue;
            }
            let now = clock.now_ms();
            let logouts = consensus.read_local(|l| due(l, now, |n| TimeZone::get(n).ok()));
            for l in logouts {
                let id = CommandId(format!(
                    "daily/{}/{}/{}/{}",
                    l.tenant, l.user, l.date, l.terminal
                ));
                let command = Command::By {
                    from: None,
                    by: Author::System {
                        rule: SystemRule::DailyLogout,
                    },
                    inner: Box::new(Command::Logout {
                        tenant: l.tenant,
                        user: l.user,
                        terminal: l.terminal.clone(),
                    }),
                };
                match consensus.write(id, &command).await {
                    Ok(Ok(_)) => {
                        tracing::info!(tenant = %l.tenant, user = %l.user, terminal = %l.terminal, "A2: daily logout")
                    }
                    Ok(Err(r)) => tracing::debug!(reason = %r.message, "daily logout refused"),
                    Err(e) => tracing::debug!(error = %e, "daily logout not written"),
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use carillon_actors::ledger::Command as C;

    #[test]
    fn users_with_daily_login_are_logged_out_after_local_midnight() {
        let mut l = Ledger::default();
        let id = |o: carillon_actors::ledger::Response| match o {
            Ok(carillon_actors::ledger::Outcome::Created { id }) => id,
            other => panic!("{other:?}"),
        };
        let t = TenantId(id(l.execute(
            C::CreateTenant {
                spec: serde_json::from_value(
                    serde_json::json!({"name": "T", "sip_domain": "t.test"}),
                )
                .expect("spec"),
                fingerprint_salt_hex: "00".repeat(16),
            },
            0,
        )));
        let branch = id(l.execute(
            C::CreateBranch {
                tenant: t,
                spec: serde_json::from_value(serde_json::json!({"name": "Prague", "country": "CZ", "timezone": "Europe/Prague"})).expect("spec"),
            },
            0,
        ));
        let mut users = Vec::new();
        for (login, daily) in [("daily", true), ("nightly", false)] {
            let spec = serde_json::from_value(serde_json::json!({
                "kind": "contact_centre", "roles": ["agent"], "full_name": login, "login": login,
                "panel_access": true, "requires_daily_login": daily, "branch": branch,
            }))
            .expect("spec");
            let user = UserId(id(l.execute(
                C::CreateUser {
                    tenant: t,
                    spec,
                    password: None,
                    pin_fingerprint: None,
                },
                0,
            )));
            users.push(user);
        }
        // 2026-12-02 22:30 UTC is 23:30 in Prague.
        let login_ms = 1_796_250_600_000;
        for user in &users {
            l.execute(
                C::Login {
                    tenant: t,
                    user: *user,
                    terminal: "panel".into(),
                },
                login_ms,
            )
            .expect("login");
        }
        let zone = |n: &str| TimeZone::get(n).ok();
        assert!(
            due(&l, login_ms + 20 * 60_000, zone).is_empty(),
            "23:50 in Prague: same day"
        );
        let due_now = due(&l, login_ms + 40 * 60_000, zone);
        assert_eq!(
            due_now,
            [DailyLogout {
                tenant: t,
                user: users[0],
                terminal: "panel".into(),
                date: "2026-12-02".into()
            }],
            "00:10 in Prague (still 2 December in UTC): only the daily user"
        );
    }
}
