//! Every refusal code (V6) with at least one scenario that produces it,
//! through the ledger or through the validation functions the API runs
//! before it hashes a secret (V1-V3). One `check()` runs every scenario: the
//! setup must be accepted, the last step must be refused with exactly the
//! expected code, the message must start with the code's rule id, and the
//! refused command must leave the ledger equal to before. The coverage test
//! walks `RefusalCode::ALL`, so a new code without a scenario fails it.

mod common;

use carillon_actors::ledger::{Command, TokenOwner};
use carillon_actors::model::credentials::{
    validate_panel_password, validate_pin, validate_sip_password,
};
use carillon_actors::model::directory::{
    BranchSpec, DeviceKind, DeviceSpec, NumberTarget, PauseTypeSpec, TenantSpec,
};
use carillon_actors::model::feature_codes::FeatureCodes;
use carillon_actors::model::licence::{LicenceKind, LicenceRank};
use carillon_actors::model::refusal::Checked;
use carillon_actors::model::user::{Role, UserKind, UserSpec};
use carillon_actors::model::{PauseTypeId, RefusalCode, SkillId, TenantId, UserId};
use common::{
    agent_spec, mobile, named, password, patched, pin, queue_spec, sip_phone, sip_secret,
    user_spec, Fixture, ADMIN_PASSWORD, AGENT_PIN, NOW_MS, REALM,
};
use serde_json::json;
use std::collections::{BTreeSet, HashSet};

/// The step that must be refused.
#[allow(clippy::large_enum_variant)] // built once per scenario
enum Act {
    /// A ledger command.
    Run(Command),
    /// A model validation the API runs before hashing (V1-V3).
    Rule(Checked<()>),
}

struct Case {
    code: RefusalCode,
    why: &'static str,
    setup: fn(&mut Fixture),
    act: fn(&Fixture) -> Act,
}

/// `case!(Code, "why", |f| act)` or `case!(Code, "why", |f| { setup }, |f| act)`.
macro_rules! case {
    ($code:ident, $why:literal, |$f:pat_param| $act:expr) => {
        Case {
            code: RefusalCode::$code,
            why: $why,
            setup: |_| {},
            act: |$f| $act,
        }
    };
    ($code:ident, $why:literal, |$s:pat_param| $setup:block, |$f:pat_param| $act:expr) => {
        Case {
            code: RefusalCode::$code,
            why: $why,
            setup: |$s| $setup,
            act: |$f| $act,
        }
    };
}

/// Runs one scenario and returns the code it was refused with.
fn check(case: &Case) -> RefusalCode {
    let mut f = Fixture::new();
    (case.setup)(&mut f);
    let before = f.ledger.clone();
    let refusal = match (case.act)(&f) {
        Act::Run(command) => f.ledger.execute(command, NOW_MS),
        Act::Rule(result) => result.map(|()| carillon_actors::ledger::Outcome::Done),
    }
    .expect_err(case.why);
    let (code, why) = (case.code, case.why);
    assert_eq!(refusal.code, code, "{why}: {}", refusal.message);
    let prefix = format!("{}: ", code.rule());
    assert!(
        refusal.message.starts_with(&prefix) && refusal.message.len() > prefix.len() + 10,
        "V6: {code} names its rule and says why: {:?}",
        refusal.message
    );
    // Not assert_eq: the Debug of two ledgers drowns the message.
    assert!(
        f.ledger == before,
        "{why}: a refused command changes nothing"
    );
    f.ledger.check_invariants();
    refusal.code
}

fn run(command: Command) -> Act {
    Act::Run(command)
}

fn new_user(f: &Fixture, spec: UserSpec) -> Act {
    let tenant = f.tenant;
    run(Command::CreateUser {
        tenant,
        spec,
        password: None,
        pin_fingerprint: None,
    })
}

fn agent_with(patch: serde_json::Value) -> UserSpec {
    patched(&agent_spec("newcomer"), patch)
}

fn new_queue(f: &Fixture, patch: serde_json::Value) -> Act {
    let spec = patched(&queue_spec("New"), patch);
    run(Command::CreateQueue {
        tenant: f.tenant,
        spec,
    })
}

fn new_phone(f: &Fixture, username: &str, short: &str) -> Act {
    let (spec, sip_secret) = (sip_phone(username, short), Some(sip_secret(username)));
    run(Command::CreateDevice {
        tenant: f.tenant,
        spec,
        sip_secret,
    })
}

fn new_branch(f: &Fixture, name: &str, country: &str, timezone: &str) -> Act {
    let spec = BranchSpec {
        name: name.into(),
        country: country.into(),
        timezone: timezone.into(),
    };
    run(Command::CreateBranch {
        tenant: f.tenant,
        spec,
    })
}

fn add_number(f: &mut Fixture, tenant: TenantId, e164: &str) {
    f.ok(Command::AddNumber {
        tenant,
        e164: e164.into(),
    });
}

fn buy(f: &mut Fixture, kind: LicenceKind, count: u32) {
    f.ok(Command::BuyLicences {
        tenant: f.tenant,
        kind,
        count,
    });
}

fn login(f: &mut Fixture, user: UserId) {
    f.ok(Command::Login {
        tenant: f.tenant,
        user,
        terminal: "panel".into(),
    });
}

fn enqueue(f: &mut Fixture, entry: &str) {
    let (tenant, queue) = (f.tenant, f.queue);
    f.ok(Command::Enqueue {
        call: None,
        tenant,
        queue,
        entry: entry.into(),
        priority: None,
    });
}

/// Fills the fixture's one device package (the SIP phone is the first of ten).
fn fill_packages(f: &mut Fixture) {
    for i in 0..9 {
        let spec = mobile(&format!("m{i}"), &format!("+42060000000{i}"));
        f.ok(Command::CreateDevice {
            tenant: f.tenant,
            spec,
            sip_secret: None,
        });
    }
}

/// The other tenant's only skill.
fn theirs_skill(f: &Fixture) -> SkillId {
    let theirs = f.ledger.tenant(f.other_tenant).expect("other tenant");
    SkillId(theirs.skills().next().expect("a skill").id)
}

/// A minimal record of an abandoned call with id `id`.
fn record(id: &str) -> Box<carillon_actors::model::activity::ActivityRecord> {
    use carillon_actors::model::activity::{ActivityOutcome, ActivityRecord, Direction};
    Box::new(ActivityRecord {
        interventions: Vec::new(),
        disposition: None,
        id: id.into(),
        direction: Direction::Inbound,
        queue: None,
        agent: None,
        caller: "+420777000001".into(),
        called: "+420225000100".into(),
        started_at_ms: 0,
        connected_at_ms: None,
        ended_at_ms: 0,
        closed_at_ms: 0,
        waiting_ms: 0,
        interaction_ms: 0,
        processing_ms: 0,
        outcome: ActivityOutcome::Abandoned,
        segments: Vec::new(),
        node: 1,
    })
}

/// Agent 1 in after-call work of call "w" of the fixture's queue (30 s).
fn wrapping_up(f: &mut Fixture) {
    ready(f);
    f.ok(Command::UpdateQueue {
        tenant: f.tenant,
        queue: f.queue,
        spec: patched(
            &queue_spec("Support"),
            serde_json::json!({"wrap_up_s": 30, "disposition_codes": ["sale"]}),
        ),
    });
    enqueue(f, "w");
    let (tenant, user) = (f.tenant, f.agents[1]);
    f.ok(Command::OfferCall {
        tenant,
        entry: "w".into(),
        user,
        epoch: 0,
    });
    f.ok(Command::ConnectCall {
        tenant,
        entry: "w".into(),
        user,
    });
    f.ok(Command::EndCall {
        tenant,
        entry: "w".into(),
        user,
        record: record("w"),
    });
}

/// Agent 1 logged in and checked in to the fixture's queue.
fn ready(f: &mut Fixture) {
    login(f, f.agents[1]);
    f.ok(Command::CheckIn {
        tenant: f.tenant,
        user: f.agents[1],
        queue: f.queue,
    });
}

fn ranks(list: &[(LicenceKind, u32)]) -> Vec<LicenceRank> {
    list.iter()
        .map(|&(kind, rank)| LicenceRank { kind, rank })
        .collect()
}

fn roles(list: &[Role]) -> BTreeSet<Role> {
    list.iter().copied().collect()
}

#[rustfmt::skip]
fn table() -> Vec<Case> {
    use Command as C;
    vec![
        // U1: nothing crosses tenants; another tenant's objects are not found.
        case!(NotFound, "a user of another tenant", |f| run(C::DeleteUser { tenant: f.tenant, user: f.other_user })),
        case!(NotFound, "log in a user of another tenant", |f| run(C::Login { tenant: f.tenant, user: f.other_user, terminal: "p".into() })),
        case!(NotFound, "check in to another tenant's queue", |f| { login(f, f.agents[0]) }, |f| run(C::CheckIn { tenant: f.tenant, user: f.agents[0], queue: f.other_queue })),
        case!(NotFound, "enqueue into another tenant's queue", |f| run(C::Enqueue { call: None, tenant: f.tenant, queue: f.other_queue, entry: "e".into(), priority: None })),
        case!(NotFound, "a seat for a user of another tenant", |f| { buy(f, LicenceKind::Voice, 1) }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.other_user, kind: LicenceKind::Voice })),
        case!(NotFound, "hand seats over to another tenant", |f| run(C::HandOverLicences { tenant: f.tenant, from: f.agents[0], to: f.other_user })),
        case!(NotFound, "route a DID to another tenant's queue", |f| { add_number(f, f.tenant, "+420225000001") }, |f| run(C::AssignNumber { tenant: f.tenant, e164: "+420225000001".into(), target: NumberTarget::Queue { queue: f.other_queue } })),
        case!(NotFound, "a device owned by a user of another tenant", |f| run(C::CreateDevice { tenant: f.tenant, spec: DeviceSpec { owner: Some(f.other_user), ..mobile("m", "+420600000001") }, sip_secret: None })),
        case!(NotFound, "another tenant's skill on a user", |f| { f.ok(C::CreateSkill { tenant: f.other_tenant, spec: named("Theirs") }); }, |f| new_user(f, agent_with(json!({"skills": [{"skill": theirs_skill(f), "level": 3}]})))),
        case!(NotFound, "another tenant's queue entry", |f| { f.ok(C::Enqueue { call: None, tenant: f.other_tenant, queue: f.other_queue, entry: "theirs".into(), priority: None }); }, |f| run(C::AssignEntry { tenant: f.tenant, entry: "theirs".into(), user: f.agents[0] })),
        case!(NotFound, "an unknown tenant", |_| run(C::RenameTenant { tenant: TenantId(999_999), name: "x".into() })),
        case!(NotFound, "an unknown tenant gets no number", |_| run(C::AddNumber { tenant: TenantId(999_999), e164: "+420225000009".into() })),
        case!(NotFound, "pause with an unknown pause type", |f| { login(f, f.agents[0]) }, |f| run(C::Pause { tenant: f.tenant, user: f.agents[0], pause_type: PauseTypeId(999_999) })),
        case!(AlreadyBootstrapped, "bootstrap happens once", |_| run(C::Bootstrap { signing_key_hex: "cd".repeat(32) })),
        case!(NameRequired, "a branch needs a name", |f| new_branch(f, " ", "CZ", "UTC")),
        case!(NameRequired, "a time-limited pause lasts a second", |f| run(C::CreatePauseType { tenant: f.tenant, spec: PauseTypeSpec { name: "Zero".into(), paid: true, max_duration_s: Some(0) } })),
        case!(NameRequired, "an entry id is not empty", |f| run(C::Enqueue { call: None, tenant: f.tenant, queue: f.queue, entry: String::new(), priority: None })),
        case!(NameRequired, "a terminal id is not empty", |f| run(C::Login { tenant: f.tenant, user: f.agents[1], terminal: String::new() })),
        case!(TextControlCharacter, "a skill named with a NUL", |f| run(C::CreateSkill { tenant: f.tenant, spec: named("Eng\u{0}lish") })),
        case!(TextControlCharacter, "a full name over two lines", |f| new_user(f, agent_with(json!({"full_name": "Anna\nNovak"})))),
        case!(TextControlCharacter, "a C1 control in a queue's name", |f| new_queue(f, json!({"name": "Sales\u{9b}"}))),
        case!(TextBidiControl, "a right-to-left override in a branch name", |f| new_branch(f, "Praha\u{202e}", "CZ", "UTC")),
        case!(TextBidiControl, "an isolate in a user's description", |f| new_user(f, agent_with(json!({"description": "\u{2066}x\u{2069}"})))),
        case!(TextTooLong, "a queue name of 201 characters", |f| new_queue(f, json!({"name": "ž".repeat(201)}))),
        case!(TextTooLong, "a music on hold name of 65", |f| new_queue(f, json!({"music_on_hold": "m".repeat(65)}))),
        case!(NameNotUnique, "skill names are unique, ignoring case", |f| run(C::CreateSkill { tenant: f.tenant, spec: named("ENGLISH") })),
        case!(NameNotUnique, "queue names are unique", |f| new_queue(f, json!({"name": "Support"}))),
        case!(SipDomainInvalid, "a SIP domain is a host name", |_| run(C::CreateTenant { spec: TenantSpec { name: "X".into(), sip_domain: "bad domain".into() }, fingerprint_salt_hex: "00".into() })),
        case!(SipDomainNotUnique, "a SIP domain belongs to one tenant", |_| run(C::CreateTenant { spec: TenantSpec { name: "X".into(), sip_domain: REALM.into() }, fingerprint_salt_hex: "00".into() })),
        case!(CountryInvalid, "ISO 3166 alpha-2", |f| new_branch(f, "B", "Czechia", "UTC")),
        case!(TimezoneInvalid, "IANA zone names", |f| new_branch(f, "B", "CZ", "Prague")),
        case!(BranchInUse, "a branch with users stays", |f| { f.add_user(agent_with(json!({"branch": f.branch})), None, None).expect("user"); }, |f| run(C::DeleteBranch { tenant: f.tenant, branch: f.branch })),
        case!(ObjectInUse, "a skill a queue requires stays", |f| { f.ok(C::UpdateQueue { tenant: f.tenant, queue: f.queue, spec: patched(&queue_spec("Support"), json!({"required_skills": [{"skill": f.skill, "min_level": 2}]})) }); }, |f| run(C::DeleteSkill { tenant: f.tenant, skill: f.skill })),
        case!(ObjectInUse, "a pause type in use stays", |f| { login(f, f.agents[0]); f.ok(C::Pause { tenant: f.tenant, user: f.agents[0], pause_type: f.lunch }); }, |f| run(C::DeletePauseType { tenant: f.tenant, pause_type: f.lunch })),
        case!(ObjectInUse, "a queue with waiting callers stays", |f| { enqueue(f, "c1") }, |f| run(C::DeleteQueue { tenant: f.tenant, queue: f.queue })),
        case!(ObjectInUse, "an assigned DID is released first", |f| { add_number(f, f.tenant, "+420225000002"); f.ok(C::AssignNumber { tenant: f.tenant, e164: "+420225000002".into(), target: NumberTarget::Queue { queue: f.queue } }); }, |f| run(C::DeleteNumber { tenant: f.tenant, number: f.state().numbers().next().expect("number").id })),
        case!(ObjectInUse, "A1: a static member keeps the agent role", |f| run(C::UpdateUser { tenant: f.tenant, user: f.agents[0], spec: patched(&agent_spec("agent0"), json!({"roles": ["supervisor"]})) })),
        case!(ObjectInUse, "D4: a line an agent is bound to stays", |f| { login(f, f.agents[1]); f.ok(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: f.phone }); }, |f| run(C::DeleteDevice { tenant: f.tenant, device: f.phone })),
        case!(ObjectInUse, "a device in a fixed binding stays", |f| { f.add_user(agent_with(json!({"binding": {"mode": "fixed", "device": f.phone}})), None, None).expect("user"); }, |f| run(C::DeleteDevice { tenant: f.tenant, device: f.phone })),
        // V4: logins.
        case!(LoginInvalid, "logins have a character set", |f| new_user(f, agent_with(json!({"login": "no spaces"})))),
        case!(LoginInvalid, "logins have two characters", |f| new_user(f, agent_with(json!({"login": "x"})))),
        case!(LoginNotUnique, "V4: logins are unique in a tenant, ignoring case", |f| new_user(f, agent_with(json!({"login": "ADMIN"})))),
        case!(LoginNotUnique, "V4: renaming onto a taken login", |f| run(C::UpdateUser { tenant: f.tenant, user: f.agents[1], spec: patched(&agent_spec("agent1"), json!({"login": "agent2"})) })),
        case!(LoginNotUnique, "operator logins are unique", |f| { f.ok(C::CreateOperator { login: "ops".into(), password_phc: "phc".into() }); }, |_| run(C::CreateOperator { login: "ops".into(), password_phc: "phc".into() })),
        case!(EmailInvalid, "an e-mail has an @ and a domain", |f| new_user(f, agent_with(json!({"email": "nobody"})))),
        case!(PhoneNumberInvalid, "a mobile is a phone number", |f| new_user(f, agent_with(json!({"mobile": "call me"})))),
        case!(PhoneNumberInvalid, "a DID is E.164", |f| run(C::AddNumber { tenant: f.tenant, e164: "225000100".into() })),
        case!(RoleRequired, "a user holds a role", |f| new_user(f, agent_with(json!({"roles": []})))),
        case!(UcRequiresPbxRole, "U3: UC needs PBX", |f| new_user(f, agent_with(json!({"roles": ["agent", "uc_user"]})))),
        case!(BackOfficeCannotLogIn, "U2: back-office users have no panel role", |f| new_user(f, user_spec(UserKind::BackOffice, &[Role::Agent], "bo"))),
        case!(ScopeNotAllowed, "only supervisors and team administrators have a scope", |f| new_user(f, agent_with(json!({"scope": {"branches": [f.branch]}})))),
        case!(SkillLevelInvalid, "A7: levels 1 to 10", |f| new_user(f, agent_with(json!({"skills": [{"skill": f.skill, "level": 11}]})))),
        case!(SkillLevelInvalid, "A7: a skill appears once", |f| new_user(f, agent_with(json!({"skills": [{"skill": f.skill, "level": 2}, {"skill": f.skill, "level": 3}]})))),
        // V1: agent PINs.
        case!(PinTooShort, "V1: at least 5 digits", |_| Act::Rule(validate_pin("1357"))),
        case!(PinNotDigits, "V1: digits only", |_| Act::Rule(validate_pin("13a57"))),
        case!(PinNotDigits, "V1: not empty", |_| Act::Rule(validate_pin(""))),
        case!(PinSequential, "V1: not an ascending run", |_| Act::Rule(validate_pin("12345"))),
        case!(PinSequential, "V1: not a descending run", |_| Act::Rule(validate_pin("98765"))),
        case!(PinRepeatedDigit, "V1: not one repeated digit", |_| Act::Rule(validate_pin("77777"))),
        case!(PinNotUnique, "V1: unique in the tenant, at creation", |f| run(C::CreateUser { tenant: f.tenant, spec: agent_spec("p1"), password: None, pin_fingerprint: Some(pin(AGENT_PIN)) })),
        case!(PinNotUnique, "V1: unique in the tenant, when changed", |f| run(C::SetUserPin { tenant: f.tenant, user: f.agents[1], pin_fingerprint: pin(AGENT_PIN) })),
        // V2: panel passwords; the strictest role sets the length.
        case!(PasswordTooShortForRole, "V2: 8 for an agent", |_| Act::Rule(validate_panel_password("Abcde1!", &roles(&[Role::Agent])))),
        case!(PasswordTooShortForRole, "V2: 10 for a supervisor", |_| Act::Rule(validate_panel_password("Abcdefg1!", &roles(&[Role::Supervisor])))),
        case!(PasswordTooShortForRole, "V2: 12 for an administrator", |_| Act::Rule(validate_panel_password("Abcdefghi1!", &roles(&[Role::SystemAdministrator])))),
        case!(PasswordTooShortForRole, "V2: 12 for a team administrator", |_| Act::Rule(validate_panel_password("Abcdefghi1!", &roles(&[Role::TeamAdministrator])))),
        case!(PasswordTooShortForRole, "V2: the strictest role applies", |_| Act::Rule(validate_panel_password("Abcdefgh1!x", &roles(&[Role::Agent, Role::SystemAdministrator])))),
        case!(PasswordMissingUppercase, "V2: an upper-case letter", |_| Act::Rule(validate_panel_password("abcdefgh1!", &roles(&[Role::Agent])))),
        case!(PasswordMissingDigit, "V2: a digit", |_| Act::Rule(validate_panel_password("Abcdefgh!!", &roles(&[Role::Agent])))),
        case!(PasswordMissingSpecial, "V2: a special character", |_| Act::Rule(validate_panel_password("Abcdefgh12", &roles(&[Role::Agent])))),
        case!(PasswordNotUnique, "V2: different from every other user's, at creation", |f| run(C::CreateUser { tenant: f.tenant, spec: agent_spec("pw"), password: Some(password(ADMIN_PASSWORD)), pin_fingerprint: None })),
        case!(PasswordNotUnique, "V2: different from every other user's, when changed", |f| run(C::SetUserPassword { tenant: f.tenant, user: f.supervisor, password: password(ADMIN_PASSWORD) })),
        case!(PasswordNotAllowed, "U2: back-office users have no panel password", |f| run(C::SetUserPassword { tenant: f.tenant, user: f.back_office, password: password("Back-Office-1!") })),
        // V3: SIP passwords.
        case!(SipPasswordTooWeak, "V3: at least 10 characters", |_| Act::Rule(validate_sip_password("Abcdef1!x"))),
        case!(SipPasswordTooWeak, "V3: a lower-case letter", |_| Act::Rule(validate_sip_password("ABCDEFGH1!"))),
        case!(SipPasswordTooWeak, "V3: an upper-case letter", |_| Act::Rule(validate_sip_password("abcdefgh1!"))),
        case!(SipPasswordTooWeak, "V3: a digit", |_| Act::Rule(validate_sip_password("Abcdefghi!"))),
        case!(SipPasswordTooWeak, "V3: a special character", |_| Act::Rule(validate_sip_password("Abcdefghi1"))),
        case!(SipUsernameInvalid, "D7: registering devices have a SIP username", |f| run(C::CreateDevice { tenant: f.tenant, spec: DeviceSpec { sip_username: None, ..sip_phone("x", "101") }, sip_secret: Some(sip_secret("x")) })),
        case!(SipUsernameInvalid, "D7: mobiles do not register", |f| run(C::CreateDevice { tenant: f.tenant, spec: DeviceSpec { sip_username: Some("m".into()), ..mobile("m", "+420600000001") }, sip_secret: None })),
        case!(SipUsernameNotUnique, "D7: unique in the tenant", |f| new_phone(f, "desk", "101")),
        case!(SipCredentialsRequired, "D7: a registering device has a password", |f| run(C::CreateDevice { tenant: f.tenant, spec: sip_phone("nosecret", "101"), sip_secret: None })),
        // V4: short numbers.
        case!(ShortNumberInvalid, "V4: at least 3 digits", |f| new_phone(f, "x", "12")),
        case!(ShortNumberInvalid, "V4: digits only", |f| new_phone(f, "x", "12a")),
        case!(ShortNumberInvalid, "V4: at most 8 digits", |f| new_phone(f, "x", "123456789")),
        case!(ShortNumberNotUnique, "V4: unique in the tenant", |f| new_phone(f, "y", "100")),
        case!(ExternalNumberRequired, "D1: mobiles have a number", |f| run(C::CreateDevice { tenant: f.tenant, spec: DeviceSpec { external_number: None, ..mobile("m", "+1") }, sip_secret: None })),
        // V5 / L1: device packages.
        case!(DevicePackageLimit, "L1: ten devices per package", |f| { fill_packages(f) }, |f| new_phone(f, "eleventh", "399")),
        case!(DevicePackageLimit, "L1: an external number turned mobile counts", |f| { fill_packages(f); f.ok(C::CreateDevice { tenant: f.tenant, spec: DeviceSpec { kind: DeviceKind::External, ..mobile("ext", "+420600000099") }, sip_secret: None }); }, |f| run(C::UpdateDevice { tenant: f.tenant, device: f.state().devices().last().expect("device").id, spec: mobile("ext", "+420600000099"), sip_secret: None })),
        case!(RingPlanInvalid, "D3: steps ring the user's own devices", |f| new_user(f, agent_with(json!({"ring_plan": {"mode": "staged", "steps": [{"delay_s": 0, "devices": [f.phone]}]}})))),
        case!(BindingInvalid, "D4: a fixed binding names a device of the tenant", |f| new_user(f, agent_with(json!({"binding": {"mode": "fixed", "device": 999_999}})))),
        case!(BindingInvalid, "D4: a fixed line cannot be changed by the agent", |f| { f.ok(C::UpdateUser { tenant: f.tenant, user: f.agents[1], spec: patched(&agent_spec("agent1"), json!({"binding": {"mode": "fixed", "device": f.phone}})) }); login(f, f.agents[1]); f.ok(C::CreateDevice { tenant: f.tenant, spec: mobile("m", "+420600000001"), sip_secret: None }); }, |f| run(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: f.state().devices().last().expect("device").id })),
        case!(BindingInvalid, "D4: a fixed line is not unbound by the agent", |f| { f.ok(C::UpdateUser { tenant: f.tenant, user: f.agents[1], spec: patched(&agent_spec("agent1"), json!({"binding": {"mode": "fixed", "device": f.phone}})) }); login(f, f.agents[1]); }, |f| run(C::UnbindDevice { tenant: f.tenant, user: f.agents[1] })),
        case!(DeviceAlreadyBound, "D4: a line bound to another agent is refused", |f| { login(f, f.agents[0]); f.ok(C::BindDevice { tenant: f.tenant, user: f.agents[0], device: f.phone }); login(f, f.agents[1]); }, |f| run(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: f.phone })),
        case!(DeviceAlreadyBound, "D4: a kept station stays taken after logout", |f| { f.ok(C::UpdateUser { tenant: f.tenant, user: f.agents[0], spec: patched(&agent_spec("agent0"), json!({"keep_station_on_logout": true})) }); login(f, f.agents[0]); f.ok(C::BindDevice { tenant: f.tenant, user: f.agents[0], device: f.phone }); f.ok(C::Logout { tenant: f.tenant, user: f.agents[0], terminal: "panel".into() }); login(f, f.agents[1]); }, |f| run(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: f.phone })),
        case!(DeviceNotBound, "D4: unbinding needs a bound line", |f| { login(f, f.agents[1]) }, |f| run(C::UnbindDevice { tenant: f.tenant, user: f.agents[1] })),
        // V5: numbers.
        case!(NumberNotUnique, "V5: a DID has one owner", |f| { add_number(f, f.other_tenant, "+420225000100") }, |f| run(C::AddNumber { tenant: f.tenant, e164: "+420225000100".into() })),
        case!(DidNotOwned, "V5: another tenant's DID", |f| { add_number(f, f.other_tenant, "+420225000101") }, |f| run(C::AssignNumber { tenant: f.tenant, e164: "+420225000101".into(), target: NumberTarget::Queue { queue: f.queue } })),
        case!(DidNotOwned, "V5: a DID nobody owns", |f| run(C::AssignNumber { tenant: f.tenant, e164: "+420225000199".into(), target: NumberTarget::User { user: f.agents[0] } })),
        case!(DidAlreadyAssigned, "V5: only a free DID is assigned", |f| { add_number(f, f.tenant, "+420225000102"); f.ok(C::AssignNumber { tenant: f.tenant, e164: "+420225000102".into(), target: NumberTarget::Queue { queue: f.queue } }); }, |f| run(C::AssignNumber { tenant: f.tenant, e164: "+420225000102".into(), target: NumberTarget::User { user: f.agents[0] } })),
        case!(DidNotAssigned, "releasing a free DID", |f| { add_number(f, f.tenant, "+420225000103") }, |f| run(C::ReleaseNumber { tenant: f.tenant, e164: "+420225000103".into() })),
        // L1-L6 / V5: licences.
        case!(CountInvalid, "L3: counts are positive", |f| run(C::BuyLicences { tenant: f.tenant, kind: LicenceKind::Voice, count: 0 })),
        case!(CountInvalid, "L3: counts are bounded", |f| run(C::BuyDevicePackages { tenant: f.tenant, count: 100_001 })),
        case!(LicenceNotNeeded, "L2: administrators are free", |f| { buy(f, LicenceKind::Voice, 1) }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.admin, kind: LicenceKind::Voice })),
        case!(LicenceNotNeeded, "L2: back-office users are free", |f| { buy(f, LicenceKind::UcContactCard, 1) }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.back_office, kind: LicenceKind::UcContactCard })),
        case!(LicenceNotNeeded, "L2: a deactivated user needs no seat", |f| { buy(f, LicenceKind::Voice, 1); f.ok(C::UpdateUser { tenant: f.tenant, user: f.agents[1], spec: patched(&agent_spec("agent1"), json!({"active": false})) }); }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[1], kind: LicenceKind::Voice })),
        case!(LicenceNotNeeded, "L2: contact-card seats are for UC users", |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::UcContactCard })),
        case!(LicencePoolExhausted, "V5/L6: no seat beyond the pool", |f| { buy(f, LicenceKind::Voice, 1); f.ok(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Voice }); }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[1], kind: LicenceKind::Voice })),
        case!(LicencePoolExhausted, "L5: a lower rank never stands in", |f| { buy(f, LicenceKind::UcContactCard, 1) }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Voice })),
        case!(LicencePoolExhausted, "L3: withdrawn seats are gone at once", |f| { buy(f, LicenceKind::Chat, 1); f.ok(C::WithdrawLicences { tenant: f.tenant, kind: LicenceKind::Chat, count: 1 }); }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Chat })),
        case!(LicenceAlreadyAssigned, "one seat per need", |f| { buy(f, LicenceKind::Voice, 2); f.ok(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Voice }); }, |f| run(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Voice })),
        case!(LicenceNotAssigned, "releasing a seat the user does not hold", |f| run(C::ReleaseLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Chat })),
        case!(LicenceNotAssigned, "L4: a hand-over needs two users", |f| run(C::HandOverLicences { tenant: f.tenant, from: f.agents[0], to: f.agents[0] })),
        case!(WithdrawalExceedsFreeSeats, "L3: a withdrawal never takes a seat in use", |f| { buy(f, LicenceKind::Voice, 1); f.ok(C::AssignLicence { tenant: f.tenant, user: f.agents[0], kind: LicenceKind::Voice }); }, |f| run(C::WithdrawLicences { tenant: f.tenant, kind: LicenceKind::Voice, count: 1 })),
        case!(WithdrawalExceedsFreeSeats, "L1: packages stay for the devices in use", |f| run(C::WithdrawDevicePackages { tenant: f.tenant, count: 1 })),
        case!(LicenceRanksInvalid, "L5: a kind has one rank", |f| run(C::SetLicenceRanks { tenant: f.tenant, ranks: ranks(&[(LicenceKind::Voice, 1), (LicenceKind::Voice, 2)]) })),
        // Queues and entries.
        case!(QueueConfigInvalid, "Q1: skills-based routing needs skills", |f| new_queue(f, json!({"strategy": {"kind": "skills_based"}}))),
        case!(QueueConfigInvalid, "A1: static members are agents", |f| new_queue(f, json!({"static_members": [f.admin]}))),
        case!(QueueConfigInvalid, "Q5: overflow goes to another queue", |f| run(C::UpdateQueue { tenant: f.tenant, queue: f.queue, spec: patched(&queue_spec("Support"), json!({"overflow": {"after_s": 30, "destination": {"kind": "queue", "queue": f.queue}}})) })),
        case!(QueueConfigInvalid, "Q5: max_length is at least 1", |f| new_queue(f, json!({"max_length": 0}))),
        case!(QueueConfigInvalid, "Q5: an exit destination needs an exit key", |f| new_queue(f, json!({"exit_destination": {"kind": "hangup", "prompt": null}}))),
        case!(QueueConfigInvalid, "Q5: no external number as a destination without trunks", |f| new_queue(f, json!({"overflow": {"after_s": 30, "destination": {"kind": "number", "number": "+420225000999"}}}))),
        case!(QueueConfigInvalid, "Q5: the exit key leads to another queue", |f| run(C::UpdateQueue { tenant: f.tenant, queue: f.queue, spec: patched(&queue_spec("Support"), json!({"exit_dtmf_key": "0", "exit_destination": {"kind": "queue", "queue": f.queue}})) })),
        case!(QueueFull, "Q5: maximum length", |f| { f.ok(C::UpdateQueue { tenant: f.tenant, queue: f.queue, spec: patched(&queue_spec("Support"), json!({"max_length": 1})) }); enqueue(f, "a"); }, |f| run(C::Enqueue { call: None, tenant: f.tenant, queue: f.queue, entry: "b".into(), priority: Some(100) })),
        // A1, A4, A5: sessions.
        case!(NotLoggedIn, "D4: an agent binds a line after logging in", |f| run(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: f.phone })),
        case!(NotFound, "D4: another tenant's line", |f| { login(f, f.agents[1]) }, |f| run(C::BindDevice { tenant: f.tenant, user: f.agents[1], device: carillon_actors::model::DeviceId(999_999) })),
        case!(NotFound, "A7: skills of another tenant", |f| { f.ok(C::CreateSkill { tenant: f.other_tenant, spec: named("Theirs") }); }, |f| run(C::SetUserSkills { tenant: f.tenant, user: f.agents[1], skills: vec![carillon_actors::model::user::SkillLevel { skill: theirs_skill(f), level: 3 }] })),
        case!(SkillLevelInvalid, "A7: skill levels are 1 to 10 when set alone", |f| run(C::SetUserSkills { tenant: f.tenant, user: f.agents[1], skills: vec![carillon_actors::model::user::SkillLevel { skill: f.skill, level: 0 }] })),
        case!(NotLoggedIn, "A1: check-in needs a login", |f| run(C::CheckIn { tenant: f.tenant, user: f.agents[0], queue: f.queue })),
        case!(NotLoggedIn, "A1: logout of a terminal that never logged in", |f| { login(f, f.agents[0]) }, |f| run(C::Logout { tenant: f.tenant, user: f.agents[0], terminal: "phone".into() })),
        case!(AlreadyLoggedIn, "A1: a terminal logs in once", |f| { login(f, f.agents[0]) }, |f| run(C::Login { tenant: f.tenant, user: f.agents[0], terminal: "panel".into() })),
        case!(AgentCannotLogIn, "A1: administrators do not log in as agents", |f| run(C::Login { tenant: f.tenant, user: f.admin, terminal: "panel".into() })),
        case!(AgentCannotLogIn, "A1: inactive agents do not log in", |f| { f.ok(C::UpdateUser { tenant: f.tenant, user: f.agents[1], spec: patched(&agent_spec("agent1"), json!({"active": false})) }); }, |f| run(C::Login { tenant: f.tenant, user: f.agents[1], terminal: "panel".into() })),
        case!(NotCheckedIn, "A1: check-out needs a check-in", |f| { login(f, f.agents[1]) }, |f| run(C::CheckOut { tenant: f.tenant, user: f.agents[1], queue: f.queue })),
        case!(AlreadyCheckedIn, "A1: a static member is checked in at login", |f| { login(f, f.agents[0]) }, |f| run(C::CheckIn { tenant: f.tenant, user: f.agents[0], queue: f.static_queue })),
        case!(NotPaused, "A5: unpause needs a pause", |f| { login(f, f.agents[0]) }, |f| run(C::Unpause { tenant: f.tenant, user: f.agents[0] })),
        case!(AlreadyPaused, "A5: one pause at a time", |f| { login(f, f.agents[0]); f.ok(C::Pause { tenant: f.tenant, user: f.agents[0], pause_type: f.pause }); }, |f| run(C::Pause { tenant: f.tenant, user: f.agents[0], pause_type: f.lunch })),
        case!(ActivityUnknown, "A4: ending an activity that is not open", |f| { login(f, f.agents[0]) }, |f| run(C::EndActivity { tenant: f.tenant, user: f.agents[0], activity: "never".into() })),
        case!(ActivityUnknown, "A4: an activity opens once", |f| { login(f, f.agents[0]); f.ok(C::BeginActivity { tenant: f.tenant, user: f.agents[0], activity: "call".into() }); }, |f| run(C::BeginActivity { tenant: f.tenant, user: f.agents[0], activity: "call".into() })),
        case!(EntryNotUnique, "Q3: entry ids are unique", |f| { enqueue(f, "e") }, |f| run(C::Enqueue { call: None, tenant: f.tenant, queue: f.queue, entry: "e".into(), priority: None })),
        case!(EntryNotWaiting, "Q3: an abandoned caller is not assigned", |f| { enqueue(f, "e"); f.ok(C::AbandonEntry { tenant: f.tenant, entry: "e".into() }); }, |f| run(C::AssignEntry { tenant: f.tenant, entry: "e".into(), user: f.agents[0] })),
        case!(EntryNotWaiting, "Q3: an abandoned caller keeps its priority", |f| { enqueue(f, "e"); f.ok(C::AbandonEntry { tenant: f.tenant, entry: "e".into() }); }, |f| run(C::ChangePriority { tenant: f.tenant, entry: "e".into(), priority: 9 })),
        case!(EntryAlreadyAssigned, "Q3: assigned exactly once", |f| { enqueue(f, "e"); f.ok(C::AssignEntry { tenant: f.tenant, entry: "e".into(), user: f.agents[0] }); }, |f| run(C::AssignEntry { tenant: f.tenant, entry: "e".into(), user: f.agents[1] })),
        case!(EntryAlreadyAssigned, "Q3: an assigned caller cannot abandon", |f| { enqueue(f, "e"); f.ok(C::AssignEntry { tenant: f.tenant, entry: "e".into(), user: f.agents[0] }); }, |f| run(C::AbandonEntry { tenant: f.tenant, entry: "e".into() })),
        case!(PriorityInvalid, "Q3: priorities 0 to 100", |f| run(C::Enqueue { call: None, tenant: f.tenant, queue: f.queue, entry: "e".into(), priority: Some(101) })),
        case!(PriorityInvalid, "Q3: changed priorities 0 to 100", |f| { enqueue(f, "e") }, |f| run(C::ChangePriority { tenant: f.tenant, entry: "e".into(), priority: 101 })),
        // A6, A4, C4: offers, calls and activities.
        case!(AgentBusy, "A6: one voice offer at a time", |f| { ready(f); enqueue(f, "e"); enqueue(f, "g"); f.ok(C::OfferCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1], epoch: 0 }); }, |f| run(C::OfferCall { tenant: f.tenant, entry: "g".into(), user: f.agents[1], epoch: 0 })),
        case!(AgentUnavailable, "A1: offers go to agents checked in", |f| { login(f, f.agents[1]); enqueue(f, "e"); }, |f| run(C::OfferCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1], epoch: 0 })),
        case!(AgentUnavailable, "A5: a paused agent is not offered calls", |f| { ready(f); f.ok(C::Pause { tenant: f.tenant, user: f.agents[1], pause_type: f.pause }); enqueue(f, "e"); }, |f| run(C::OfferCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1], epoch: 0 })),
        case!(EntryNotWaiting, "Q3: only waiting callers are offered", |f| { ready(f); enqueue(f, "e"); f.ok(C::AbandonEntry { tenant: f.tenant, entry: "e".into() }); }, |f| run(C::OfferCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1], epoch: 0 })),
        case!(DispositionUnknown, "C4: a disposition is one of the queue's codes", |f| { wrapping_up(f); }, |f| run(C::SetDisposition { tenant: f.tenant, user: f.agents[1], code: "won".into() })),
        case!(DispositionUnknown, "C4: ending after-call work with a code the queue lacks", |f| { wrapping_up(f); }, |f| run(C::EndWrapUp { tenant: f.tenant, user: f.agents[1], disposition: Some("won".into()) })),
        case!(ActivityUnknown, "A4: a disposition is chosen in after-call work", |f| { ready(f); }, |f| run(C::SetDisposition { tenant: f.tenant, user: f.agents[1], code: "sale".into() })),
        case!(WrapUpInvalid, "A4: an agent's own limit is at most an hour", |f| new_user(f, agent_with(json!({"wrap_up_s": 3601})))),
        case!(ActivityUnknown, "A4: a connection needs the agent's offer", |f| { ready(f); enqueue(f, "e"); }, |f| run(C::ConnectCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1] })),
        case!(ActivityClosed, "C4: one record per activity", |f| { enqueue(f, "e"); f.ok(C::CloseActivity { tenant: f.tenant, record: record("e") }); }, |f| run(C::CloseActivity { tenant: f.tenant, record: record("e") })),
        case!(PlacementStale, "Q3: an owner acting on an old placement is fenced", |f| { ready(f); enqueue(f, "e"); }, |f| run(C::OfferCall { tenant: f.tenant, entry: "e".into(), user: f.agents[1], epoch: 7 })),
        case!(TokenNameInvalid, "API tokens are named", |f| run(C::CreateApiToken { owner: TokenOwner::User { tenant: f.tenant, user: f.admin }, name: String::new(), token_hash: "h".into() })),
        // U5: password recovery.
        case!(ResetTokenInvalid, "U5: a reset the system did not issue", |_| run(C::CompletePasswordReset { token_hash: "forged".into(), password: common::password("Reset-Password-9!") })),
        case!(ResetTokenExpired, "U5: a reset past its lifetime", |f| { let issue = C::IssuePasswordReset { tenant: f.tenant, user: f.admin, token_hash: "old".into(), expires_at_ms: NOW_MS - 1 }; f.run_at(NOW_MS - 10_000, issue).expect("issued"); }, |_| run(C::CompletePasswordReset { token_hash: "old".into(), password: common::password("Reset-Password-9!") })),
        case!(ResetTokenUsed, "U5: a reset used once already", |f| { f.ok(C::IssuePasswordReset { tenant: f.tenant, user: f.admin, token_hash: "once".into(), expires_at_ms: NOW_MS + 60_000 }); f.ok(C::CompletePasswordReset { token_hash: "once".into(), password: common::password("Reset-Password-9!") }); }, |_| run(C::CompletePasswordReset { token_hash: "once".into(), password: common::password("Other-Password-8!") })),
        case!(ResetTooSoon, "U5: one reset e-mail a minute per user", |f| { f.ok(C::IssuePasswordReset { tenant: f.tenant, user: f.admin, token_hash: "first".into(), expires_at_ms: NOW_MS + 60_000 }); }, |f| run(C::IssuePasswordReset { tenant: f.tenant, user: f.admin, token_hash: "second".into(), expires_at_ms: NOW_MS + 60_000 })),
        // A3: feature codes.
        case!(FeatureCodeInvalid, "A3: a code of digits alone would shadow a short number", |f| run(C::SetFeatureCodes { tenant: f.tenant, codes: FeatureCodes { login: "100".into(), ..FeatureCodes::default() } })),
        case!(FeatureCodeAmbiguous, "A3: a code that is a prefix of another", |f| run(C::SetFeatureCodes { tenant: f.tenant, codes: FeatureCodes { unpause: "*20".into(), ..FeatureCodes::default() } })),
        case!(NotFound, "A3: another tenant's codes", |_| run(C::SetFeatureCodes { tenant: TenantId(999_999), codes: FeatureCodes::default() })),
    ]
}

#[test]
fn every_scenario_is_refused_with_its_code_a_rule_named_message_and_no_change() {
    for case in table() {
        check(&case);
    }
}

#[test]
fn every_refusal_code_has_a_scenario() {
    let covered: HashSet<RefusalCode> = table().iter().map(|c| c.code).collect();
    let missing: Vec<&RefusalCode> = RefusalCode::ALL
        .iter()
        .filter(|c| !covered.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a scenario: {missing:?}");
}

/// The refusal rules do not over-reach: the values just inside each bound
/// are accepted.
#[test]
fn values_at_the_bounds_are_accepted() {
    for good in ["13579", "12344", "90817", "00001"] {
        assert_eq!(validate_pin(good), Ok(()), "PIN {good}");
    }
    let cases: [(&str, &[Role]); 4] = [
        ("Abcdef1!", &[Role::Agent]),
        ("Abcdefgh1!", &[Role::Supervisor, Role::Agent]),
        ("Abcdefghij1!", &[Role::SystemAdministrator]),
        ("Žluťoučký1€", &[Role::Agent]),
    ];
    for (password, held) in cases {
        assert_eq!(
            validate_panel_password(password, &roles(held)),
            Ok(()),
            "{password}"
        );
    }
    assert_eq!(validate_sip_password("Abcdefgh1!"), Ok(()));
    let mut f = Fixture::new();
    let short = f.run(Command::CreateDevice {
        tenant: f.tenant,
        spec: sip_phone("three", "101"),
        sip_secret: Some(sip_secret("three")),
    });
    assert!(short.is_ok(), "a 3-digit short number: {short:?}");
    // Device packages, SIP usernames, short numbers, logins and PINs are
    // counted and kept unique per tenant.
    let tenant = f.other_tenant;
    let phone = Command::CreateDevice {
        tenant,
        spec: sip_phone("desk", "100"),
        sip_secret: Some(sip_secret("desk")),
    };
    assert_eq!(f.run(phone.clone()), Err(RefusalCode::DevicePackageLimit));
    f.ok(Command::BuyDevicePackages { tenant, count: 1 });
    assert!(
        f.run(phone).is_ok(),
        "username desk and extension 100 are free there"
    );
    let login = f.run(Command::CreateUser {
        tenant: f.other_tenant,
        spec: agent_spec("admin"),
        password: None,
        pin_fingerprint: Some(pin(AGENT_PIN)),
    });
    assert!(
        login.is_ok(),
        "logins and PINs are unique per tenant: {login:?}"
    );
}

/// U1: queries take the tenant, and another tenant's objects are absent.
#[test]
fn queries_never_show_another_tenants_objects() {
    let f = Fixture::new();
    let ours = f.state();
    assert!(ours.find_user(f.other_user).is_none());
    assert!(ours.queues().all(|q| q.id != f.other_queue));
    let theirs = f.ledger.tenant(f.other_tenant).expect("other tenant");
    assert!(theirs.find_user(f.admin).is_none());
    assert_eq!(theirs.users().count(), 1);
    let skills: Vec<SkillId> = ours.skills().map(|s| SkillId(s.id)).collect();
    assert_eq!(skills, vec![f.skill, f.other_skill]);
}
