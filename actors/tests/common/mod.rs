//! A small bootstrapped ledger for tests, built through the ledger's own
//! commands: one tenant with a branch, skills, a group, pause types, a
//! queue, users of every kind and a SIP phone, plus a second tenant whose
//! objects must stay invisible from the first.
//!
//! Building it hashes secrets with argon2, so it is built once per test
//! binary and cloned (`Fixture::new`).

#![allow(dead_code)]

use carillon_actors::ledger::{Command, Ledger, Outcome, TenantState};
use carillon_actors::model::credentials::{
    hash_panel_password, pin_fingerprint, sip_ha1, PasswordHash, SipSecret,
};
use carillon_actors::model::directory::{
    BranchSpec, DeviceKind, DeviceSpec, NamedSpec, PauseTypeSpec, TenantSpec,
};
use carillon_actors::model::licence::LicenceKind;
use carillon_actors::model::queue::QueueSpec;
use carillon_actors::model::user::{Role, UserKind, UserSpec};
use carillon_actors::model::{
    BranchId, DeviceId, GroupId, PauseTypeId, QueueId, RefusalCode, SkillId, TenantId, UserId,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::OnceLock;

/// 2026-11-22T12:00:00Z.
pub const NOW_MS: u64 = 1_795_348_800_000;
/// The fixture tenant's fingerprint salt.
pub const TENANT_SALT: [u8; 16] = [7; 16];
/// The fixture tenant's SIP domain (its digest realm).
pub const REALM: &str = "t.test";
/// The panel password the fixture's administrator holds.
pub const ADMIN_PASSWORD: &str = "Admin-Password-1!";
/// The PIN the fixture's first agent holds.
pub const AGENT_PIN: &str = "40718";

/// Applies `command` at `NOW_MS`; a refusal comes back as its code.
pub fn cmd(ledger: &mut Ledger, command: Command) -> Result<Outcome, RefusalCode> {
    ledger.execute(command, NOW_MS).map_err(|r| r.code)
}

/// Applies a command that must create something; its id.
pub fn created(ledger: &mut Ledger, command: Command) -> u64 {
    match ledger.execute(command, NOW_MS) {
        Ok(Outcome::Created { id }) => id,
        other => panic!("expected a creation, got {other:?}"),
    }
}

/// A panel password hashed with fixed salts (the fixture tenant's salt).
pub fn password(plain: &str) -> PasswordHash {
    hash_panel_password(plain, &[1; 16], &TENANT_SALT)
}

/// A PIN fingerprint with the fixture tenant's salt.
pub fn pin(plain: &str) -> String {
    pin_fingerprint(plain, &TENANT_SALT)
}

/// SIP digest secrets for `username` in the fixture realm.
pub fn sip_secret(username: &str) -> SipSecret {
    sip_ha1(username, REALM, "Sip-Password-1!")
}

/// `value` with the top-level fields of `patch` replaced (through JSON, the
/// way the API receives specs).
pub fn patched<T: Serialize + DeserializeOwned>(value: &T, patch: serde_json::Value) -> T {
    let mut json = serde_json::to_value(value).expect("serialisable");
    for (field, v) in patch.as_object().expect("a patch is an object") {
        json[field] = v.clone();
    }
    serde_json::from_value(json).expect("the patched value deserialises")
}

/// A user spec; contact-centre users get panel access.
pub fn user_spec(kind: UserKind, roles: &[Role], login: &str) -> UserSpec {
    serde_json::from_value(serde_json::json!({
        "kind": kind,
        "roles": roles,
        "full_name": format!("User {login}"),
        "login": login,
        "panel_access": kind == UserKind::ContactCentre,
    }))
    .expect("a valid user spec")
}

/// A contact-centre agent with panel access.
pub fn agent_spec(login: &str) -> UserSpec {
    user_spec(UserKind::ContactCentre, &[Role::Agent], login)
}

/// A queue with defaults.
pub fn queue_spec(name: &str) -> QueueSpec {
    serde_json::from_value(serde_json::json!({ "name": name })).expect("a valid queue spec")
}

/// A skill or group spec.
pub fn named(name: &str) -> NamedSpec {
    NamedSpec {
        name: name.into(),
        description: String::new(),
    }
}

/// A hardware SIP phone.
pub fn sip_phone(username: &str, short: &str) -> DeviceSpec {
    DeviceSpec {
        kind: DeviceKind::SipPhone,
        name: format!("{username}'s phone"),
        owner: None,
        sip_username: Some(username.into()),
        short_number: Some(short.into()),
        external_number: None,
    }
}

/// A mobile phone: counts against the device packages, needs no SIP secret.
pub fn mobile(name: &str, number: &str) -> DeviceSpec {
    DeviceSpec {
        kind: DeviceKind::Mobile,
        name: name.into(),
        owner: None,
        sip_username: None,
        short_number: None,
        external_number: Some(number.into()),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The test tenant and the ids of what it holds.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub ledger: Ledger,
    pub tenant: TenantId,
    pub branch: BranchId,
    pub skill: SkillId,
    pub other_skill: SkillId,
    pub group: GroupId,
    /// Paid, unlimited.
    pub pause: PauseTypeId,
    /// Unpaid, at most 30 minutes.
    pub lunch: PauseTypeId,
    /// No length limit.
    pub queue: QueueId,
    /// The first agent is a static member.
    pub static_queue: QueueId,
    /// System administrator with `ADMIN_PASSWORD`.
    pub admin: UserId,
    pub supervisor: UserId,
    /// Three agents with panel access; the first holds `AGENT_PIN`.
    pub agents: Vec<UserId>,
    /// PBX + UC user (needs a contact-card seat).
    pub uc_user: UserId,
    /// Back-office PBX user (free, never logs in).
    pub back_office: UserId,
    /// A SIP phone with short number 100 and username "desk".
    pub phone: DeviceId,
    /// A second tenant, its agent and its queue.
    pub other_tenant: TenantId,
    pub other_user: UserId,
    pub other_queue: QueueId,
}

impl Fixture {
    /// A fresh copy of the fixture.
    pub fn new() -> Self {
        static BASE: OnceLock<Fixture> = OnceLock::new();
        BASE.get_or_init(Self::build).clone()
    }

    fn build() -> Self {
        let mut l = Ledger::default();
        let ok = |l: &mut Ledger, c: Command| {
            cmd(l, c).unwrap_or_else(|code| panic!("fixture command refused: {code}"))
        };
        ok(
            &mut l,
            Command::Bootstrap {
                signing_key_hex: "ab".repeat(32),
            },
        );
        let tenant_spec = |name: &str, domain: &str| TenantSpec {
            name: name.into(),
            sip_domain: domain.into(),
        };
        let tenant = TenantId(created(
            &mut l,
            Command::CreateTenant {
                spec: tenant_spec("Tenant", REALM),
                fingerprint_salt_hex: hex(&TENANT_SALT),
            },
        ));
        let other_tenant = TenantId(created(
            &mut l,
            Command::CreateTenant {
                spec: tenant_spec("Other", "o.test"),
                fingerprint_salt_hex: hex(&[9; 16]),
            },
        ));
        let branch = BranchId(created(
            &mut l,
            Command::CreateBranch {
                tenant,
                spec: BranchSpec {
                    name: "Prague".into(),
                    country: "CZ".into(),
                    timezone: "Europe/Prague".into(),
                },
            },
        ));
        let skill = SkillId(created(
            &mut l,
            Command::CreateSkill {
                tenant,
                spec: named("English"),
            },
        ));
        let other_skill = SkillId(created(
            &mut l,
            Command::CreateSkill {
                tenant,
                spec: named("Czech"),
            },
        ));
        let group = GroupId(created(
            &mut l,
            Command::CreateGroup {
                tenant,
                spec: named("Tier 1"),
            },
        ));
        let pause_type = |name: &str, paid: bool, max_duration_s: Option<u32>| PauseTypeSpec {
            name: name.into(),
            paid,
            max_duration_s,
        };
        let pause = PauseTypeId(created(
            &mut l,
            Command::CreatePauseType {
                tenant,
                spec: pause_type("Training", true, None),
            },
        ));
        let lunch = PauseTypeId(created(
            &mut l,
            Command::CreatePauseType {
                tenant,
                spec: pause_type("Lunch", false, Some(1800)),
            },
        ));
        ok(&mut l, Command::BuyDevicePackages { tenant, count: 1 });
        let add_user = |l: &mut Ledger, tenant, spec, password, pin_fingerprint| {
            UserId(created(
                l,
                Command::CreateUser {
                    tenant,
                    spec,
                    password,
                    pin_fingerprint,
                },
            ))
        };
        let admin = add_user(
            &mut l,
            tenant,
            user_spec(
                UserKind::ContactCentre,
                &[Role::SystemAdministrator],
                "admin",
            ),
            Some(password(ADMIN_PASSWORD)),
            None,
        );
        let supervisor = add_user(
            &mut l,
            tenant,
            user_spec(UserKind::ContactCentre, &[Role::Supervisor], "super"),
            None,
            None,
        );
        let agents: Vec<UserId> = (0..3)
            .map(|i| {
                let pin = (i == 0).then(|| pin(AGENT_PIN));
                add_user(&mut l, tenant, agent_spec(&format!("agent{i}")), None, pin)
            })
            .collect();
        let uc_user = add_user(
            &mut l,
            tenant,
            user_spec(
                UserKind::ContactCentre,
                &[Role::PbxUser, Role::UcUser],
                "uc",
            ),
            None,
            None,
        );
        let back_office = add_user(
            &mut l,
            tenant,
            user_spec(UserKind::BackOffice, &[Role::PbxUser], "desk"),
            None,
            None,
        );
        let queue = QueueId(created(
            &mut l,
            Command::CreateQueue {
                tenant,
                spec: queue_spec("Support"),
            },
        ));
        let mut static_spec = queue_spec("Sales");
        static_spec.static_members.insert(agents[0]);
        let static_queue = QueueId(created(
            &mut l,
            Command::CreateQueue {
                tenant,
                spec: static_spec,
            },
        ));
        let mut phone_spec = sip_phone("desk", "100");
        phone_spec.owner = Some(back_office);
        let phone = DeviceId(created(
            &mut l,
            Command::CreateDevice {
                tenant,
                spec: phone_spec,
                sip_secret: Some(sip_secret("desk")),
            },
        ));
        let other_user = add_user(&mut l, other_tenant, agent_spec("elsewhere"), None, None);
        let other_queue = QueueId(created(
            &mut l,
            Command::CreateQueue {
                tenant: other_tenant,
                spec: queue_spec("Theirs"),
            },
        ));
        l.check_invariants();
        Fixture {
            ledger: l,
            tenant,
            branch,
            skill,
            other_skill,
            group,
            pause,
            lunch,
            queue,
            static_queue,
            admin,
            supervisor,
            agents,
            uc_user,
            back_office,
            phone,
            other_tenant,
            other_user,
            other_queue,
        }
    }

    /// Applies `command` at `NOW_MS`; a refusal comes back as its code.
    pub fn run(&mut self, command: Command) -> Result<Outcome, RefusalCode> {
        cmd(&mut self.ledger, command)
    }

    /// Applies `command` at `now_ms`.
    pub fn run_at(&mut self, now_ms: u64, command: Command) -> Result<Outcome, RefusalCode> {
        self.ledger.execute(command, now_ms).map_err(|r| r.code)
    }

    /// Applies a command that must be accepted.
    pub fn ok(&mut self, command: Command) -> Outcome {
        let shown = format!("{command:?}");
        self.run(command)
            .unwrap_or_else(|code| panic!("{shown} refused: {code}"))
    }

    /// Applies a command that must create something; its id.
    pub fn create(&mut self, command: Command) -> u64 {
        created(&mut self.ledger, command)
    }

    /// Creates a user in the fixture tenant.
    pub fn add_user(
        &mut self,
        spec: UserSpec,
        password: Option<PasswordHash>,
        pin_fingerprint: Option<String>,
    ) -> Result<UserId, RefusalCode> {
        match self.run(Command::CreateUser {
            tenant: self.tenant,
            spec,
            password,
            pin_fingerprint,
        })? {
            Outcome::Created { id } => Ok(UserId(id)),
            other => panic!("expected a creation, got {other:?}"),
        }
    }

    /// The fixture tenant's state.
    pub fn state(&self) -> &TenantState {
        self.ledger.tenant(self.tenant).expect("the fixture tenant")
    }

    /// (in use, pool) of `kind` in the fixture tenant's licence report.
    pub fn seats(&self, kind: LicenceKind) -> (u32, u32) {
        let report = self.state().licence_report(NOW_MS);
        let line = report
            .kinds
            .iter()
            .find(|k| k.kind == kind)
            .expect("every kind has a line");
        (line.in_use, line.pool)
    }
}
