//! Directory behaviour beyond single refusals: line binding (D4) with
//! keep-station, deactivation (U5 `active`: seats back to the pool, logged
//! out after the current activity), skills set alone (A7), what a deleted
//! user leaves behind, and views that never carry secrets.

mod common;

use carillon_actors::ledger::{AfterActivity, Command, Outcome};
use carillon_actors::model::licence::LicenceKind;
use carillon_actors::model::queue::Strategy;
use carillon_actors::model::user::{Binding, SkillLevel};
use carillon_actors::model::{DeviceId, RefusalCode, UserId};
use common::{agent_spec, mobile, patched, queue_spec, Fixture, ADMIN_PASSWORD, AGENT_PIN};
use serde_json::json;

fn login(f: &mut Fixture, user: UserId, terminal: &str) {
    f.ok(Command::Login {
        tenant: f.tenant,
        user,
        terminal: terminal.into(),
    });
}

fn logout(f: &mut Fixture, user: UserId, terminal: &str) -> Outcome {
    f.ok(Command::Logout {
        tenant: f.tenant,
        user,
        terminal: terminal.into(),
    })
}

fn bind(f: &mut Fixture, user: UserId, device: DeviceId) -> Result<Outcome, RefusalCode> {
    f.run(Command::BindDevice {
        tenant: f.tenant,
        user,
        device,
    })
}

fn bound(f: &Fixture, user: UserId) -> Option<DeviceId> {
    f.state().bound_device(user).map(|d| d.id)
}

fn add_mobile(f: &mut Fixture, name: &str, number: &str) -> DeviceId {
    let tenant = f.tenant;
    DeviceId(f.create(Command::CreateDevice {
        tenant,
        spec: mobile(name, number),
        sip_secret: None,
    }))
}

/// Replaces the top-level fields of agent `index`'s spec (login `agent{index}`).
fn update_agent(f: &mut Fixture, index: usize, patch: serde_json::Value) {
    let (tenant, user) = (f.tenant, f.agents[index]);
    let spec = patched(&agent_spec(&format!("agent{index}")), patch);
    f.ok(Command::UpdateUser { tenant, user, spec });
}

#[test]
fn a_dynamic_agent_picks_a_free_line_switches_and_frees_it_at_logout() {
    let mut f = Fixture::new();
    let (a, b, phone) = (f.agents[1], f.agents[2], f.phone);
    let second = add_mobile(&mut f, "spare", "+420600000001");
    login(&mut f, a, "panel");
    login(&mut f, b, "panel");
    assert_eq!(bind(&mut f, a, phone), Ok(Outcome::Done));
    assert_eq!(bind(&mut f, a, phone), Ok(Outcome::Done), "idempotent");
    assert_eq!(bind(&mut f, b, phone), Err(RefusalCode::DeviceAlreadyBound));
    assert_eq!(bind(&mut f, a, second), Ok(Outcome::Done), "a switches");
    assert_eq!(bound(&f, a), Some(second));
    assert_eq!(
        bind(&mut f, b, phone),
        Ok(Outcome::Done),
        "the old line is free"
    );
    f.ok(Command::UnbindDevice {
        tenant: f.tenant,
        user: b,
    });
    assert_eq!(bound(&f, b), None);
    logout(&mut f, a, "panel");
    assert_eq!(bound(&f, a), None, "D4: logout frees the line");
    f.ledger.check_invariants();
}

#[test]
fn a_kept_station_survives_logout_and_is_freed_by_deactivation() {
    let mut f = Fixture::new();
    let (a, b, phone) = (f.agents[1], f.agents[2], f.phone);
    update_agent(&mut f, 1, json!({"keep_station_on_logout": true}));
    login(&mut f, a, "panel");
    bind(&mut f, a, phone).expect("bind");
    logout(&mut f, a, "panel");
    assert_eq!(bound(&f, a), Some(phone), "D4: the station is kept");
    login(&mut f, b, "panel");
    assert_eq!(bind(&mut f, b, phone), Err(RefusalCode::DeviceAlreadyBound));
    login(&mut f, a, "panel");
    assert_eq!(bound(&f, a), Some(phone), "still there at the next login");
    logout(&mut f, a, "panel");
    update_agent(
        &mut f,
        1,
        json!({"keep_station_on_logout": true, "active": false}),
    );
    assert_eq!(bound(&f, a), None, "a deactivated agent keeps no line");
    assert_eq!(bind(&mut f, b, phone), Ok(Outcome::Done));
}

#[test]
fn a_fixed_binding_takes_its_line_at_login_unless_another_agent_keeps_it() {
    let mut f = Fixture::new();
    let (a, b, phone) = (f.agents[1], f.agents[2], f.phone);
    let fixed = json!({"binding": {"mode": "fixed", "device": phone}});
    update_agent(&mut f, 1, fixed.clone());
    login(&mut f, a, "panel");
    assert_eq!(bound(&f, a), Some(phone));
    logout(&mut f, a, "panel");
    assert_eq!(bound(&f, a), None);
    // Another agent keeps the line: the fixed agent logs in without it.
    update_agent(&mut f, 2, json!({"keep_station_on_logout": true}));
    login(&mut f, b, "panel");
    bind(&mut f, b, phone).expect("free");
    logout(&mut f, b, "panel");
    login(&mut f, a, "panel");
    assert_eq!(bound(&f, a), None);
    assert_eq!(bound(&f, b), Some(phone));
    let state = f.state();
    let user = state.find_user(a).expect("user");
    assert_eq!(user.spec.binding, Binding::Fixed { device: phone });
}

#[test]
fn deactivation_returns_seats_and_logs_out_after_the_current_activity() {
    let mut f = Fixture::new();
    let (tenant, a) = (f.tenant, f.agents[1]);
    f.ok(Command::BuyLicences {
        tenant,
        kind: LicenceKind::Voice,
        count: 1,
    });
    f.ok(Command::AssignLicence {
        tenant,
        user: a,
        kind: LicenceKind::Voice,
    });
    login(&mut f, a, "panel");
    login(&mut f, a, "phone");
    f.ok(Command::BeginActivity {
        tenant,
        user: a,
        activity: "call-1".into(),
    });
    update_agent(&mut f, 1, json!({"active": false}));
    assert_eq!(f.seats(LicenceKind::Voice), (0, 1), "L4: the seat is free");
    let session = f.state().session(a).expect("the call goes on");
    assert!(session.terminals.is_empty(), "no terminal stays logged in");
    assert_eq!(session.after_activity, Some(AfterActivity::Logout));
    assert_eq!(
        f.run(Command::Login {
            tenant,
            user: a,
            terminal: "panel".into()
        }),
        Err(RefusalCode::AgentCannotLogIn)
    );
    f.ok(Command::EndActivity {
        tenant,
        user: a,
        activity: "call-1".into(),
    });
    assert!(f.state().session(a).is_none(), "logged out after the call");
    // An idle agent who loses panel access is logged out at once.
    let b = f.agents[2];
    login(&mut f, b, "panel");
    update_agent(&mut f, 2, json!({"panel_access": false}));
    assert!(f.state().session(b).is_none());
    f.ledger.check_invariants();
}

#[test]
fn skills_are_set_alone_and_the_rest_of_the_user_stays() {
    let mut f = Fixture::new();
    let (tenant, a) = (f.tenant, f.agents[0]);
    let before = f.state().find_user(a).expect("user").clone();
    let skills = vec![
        SkillLevel {
            skill: f.skill,
            level: 4,
        },
        SkillLevel {
            skill: f.other_skill,
            level: 10,
        },
    ];
    f.ok(Command::SetUserSkills {
        tenant,
        user: a,
        skills: skills.clone(),
    });
    let after = f.state().find_user(a).expect("user").clone();
    assert_eq!(after.spec.skills, skills);
    assert_eq!(after.spec.login, before.spec.login);
    assert_eq!(
        after.pin_fingerprint, before.pin_fingerprint,
        "secrets stay"
    );
    let duplicate = vec![skills[0], skills[0]];
    assert_eq!(
        f.run(Command::SetUserSkills {
            tenant,
            user: a,
            skills: duplicate
        }),
        Err(RefusalCode::SkillLevelInvalid)
    );
}

#[test]
fn a_deleted_user_leaves_no_line_weight_or_membership_behind() {
    let mut f = Fixture::new();
    let (tenant, a, phone) = (f.tenant, f.agents[0], f.phone);
    let spec = patched(
        &queue_spec("Weighted"),
        json!({"strategy": {"kind": "weighted_random", "weights": [{"user": a, "weight": 5}]}}),
    );
    let queue = f.create(Command::CreateQueue { tenant, spec });
    login(&mut f, a, "panel");
    bind(&mut f, a, phone).expect("bind");
    f.ok(Command::DeleteUser { tenant, user: a });
    assert!(f.state().devices().all(|d| d.bound_to.is_none()));
    let weighted = f.state().queues().find(|q| q.id.0 == queue).expect("queue");
    assert_eq!(
        weighted.spec.strategy,
        Strategy::WeightedRandom { weights: vec![] }
    );
    assert!(f
        .state()
        .queues()
        .all(|q| !q.spec.static_members.contains(&a)));
    // The queue can still be saved: nothing dangles.
    let spec = weighted.spec.clone();
    let queue = weighted.id;
    f.ok(Command::UpdateQueue {
        tenant,
        queue,
        spec,
    });
    f.ledger.check_invariants();
}

#[test]
fn views_never_carry_secrets() {
    let f = Fixture::new();
    let admin = f
        .ledger
        .user_view(f.tenant, f.admin)
        .expect("the admin's view");
    assert!(admin.has_password);
    let stored = f.state().find_user(f.admin).expect("user");
    let hash = stored.password.as_ref().expect("hash");
    let json = serde_json::to_string(&admin).expect("json");
    assert!(!json.contains(&hash.phc) && !json.contains(&hash.fingerprint));
    assert!(!json.contains(ADMIN_PASSWORD));
    let agent = f.state().user_view(f.agents[0]).expect("view");
    let fingerprint = f
        .state()
        .find_user(f.agents[0])
        .expect("user")
        .pin_fingerprint
        .clone();
    let json = serde_json::to_string(&agent).expect("json");
    assert!(agent.has_pin && !json.contains(&fingerprint.expect("pin")));
    assert!(!json.contains(AGENT_PIN));
    for device in f.state().device_views() {
        let json = serde_json::to_string(&device).expect("json");
        assert!(!json.contains("ha1"), "{json}");
    }
    assert!(f.ledger.user_view(f.other_tenant, f.admin).is_none(), "U1");
    assert_eq!(
        f.ledger.user_by_login(f.tenant, "ADMIN").map(|u| u.id),
        Some(f.admin)
    );
    assert!(f.ledger.user_by_login(f.other_tenant, "admin").is_none());
}

/// The SIP username lookup (every REGISTER) follows renames, deletions and snapshots: the
/// ledger keeps an index, not a scan.
#[test]
fn the_sip_username_lookup_follows_renames_deletions_and_snapshots() {
    use carillon_actors::ledger::Ledger;
    use carillon_consensus::ReplicatedState;
    use common::{sip_phone, sip_secret};
    let mut f = Fixture::new();
    let desk = f.state().device_by_sip_username("desk").map(|d| d.id);
    assert_eq!(desk, Some(f.phone), "the fixture's phone registers as desk");
    f.ok(Command::UpdateDevice {
        tenant: f.tenant,
        device: f.phone,
        spec: sip_phone("front-desk", "101"),
        sip_secret: None,
    });
    assert!(
        f.state().device_by_sip_username("desk").is_none(),
        "the old name is gone"
    );
    assert_eq!(
        f.state().device_by_sip_username("front-desk").map(|d| d.id),
        Some(f.phone)
    );
    // The freed name can be taken by another device.
    let second = DeviceId(f.create(Command::CreateDevice {
        tenant: f.tenant,
        spec: sip_phone("desk", "102"),
        sip_secret: Some(sip_secret("desk")),
    }));
    assert_eq!(
        f.state().device_by_sip_username("desk").map(|d| d.id),
        Some(second)
    );
    let bytes = f.ledger.snapshot().expect("snapshot");
    let restored = Ledger::restore(&bytes).expect("restore");
    let tenant = restored.tenant(f.tenant).expect("tenant");
    assert_eq!(
        tenant.device_by_sip_username("desk").map(|d| d.id),
        Some(second)
    );
    assert_eq!(
        tenant.device_by_sip_username("front-desk").map(|d| d.id),
        Some(f.phone)
    );
    f.ok(Command::DeleteDevice {
        tenant: f.tenant,
        device: second,
    });
    assert!(
        f.state().device_by_sip_username("desk").is_none(),
        "a deleted device is gone"
    );
    f.ledger.check_invariants();
}
