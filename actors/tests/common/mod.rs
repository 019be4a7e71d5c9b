//! A small tenant for ledger tests, built through the ledger's own commands.

#![allow(dead_code)]

use carillon_actors::ledger::{Command, Ledger, Outcome};
use carillon_actors::model::credentials::{hash_panel_password, pin_fingerprint, sip_ha1};
use carillon_actors::model::directory::{
    BranchSpec, DeviceKind, DeviceSpec, NamedSpec, PauseTypeSpec, TenantSpec,
};
use carillon_actors::model::licence::LicenceKind;
use carillon_actors::model::queue::QueueSpec;
use carillon_actors::model::user::{Role, UserKind, UserSpec};
use carillon_actors::model::{
    BranchId, DeviceId, GroupId, PauseTypeId, QueueId, RefusalCode, SkillId, TenantId, UserId,
};
use std::collections::BTreeSet;

pub const NOW_MS: u64 = 1_795_348_800_000; // 2026-11-22T12:00:00Z
pub const TENANT_SALT: [u8; 16] = [7; 16];

/// A ledger with one bootstrapped tenant and a few objects of each kind.
pub struct Fixture {
    pub ledger: Ledger,
    pub tenant: TenantId,
    pub other_tenant: TenantId,
    pub branch: BranchId,
    pub skill: SkillId,
    pub group: GroupId,
    pub pause: PauseTypeId,
    pub queue: QueueId,
    pub admin: UserId,
    pub agents: Vec<UserId>,
    pub uc_user: UserId,
    pub back_office: UserId,
    pub phone: DeviceId,
    pub other_user: UserId,
}

/// A user spec with the given kind, roles and login.
pub fn user(kind: UserKind, roles: &[Role], login: &str) -> UserSpec {
    let panel = kind == UserKind::ContactCentre;
    serde_json::from_value(serde_json::json!({
        "kind": kind, "roles": roles, "full_name": format!("User {login}"), "login": login, "panel_access": panel,
    }))
    .expect("a valid user spec")
}

pub fn queue_spec(name: &str) -> QueueSpec {
    serde_json::from_value(serde_json::json!({ "name": name })).expect("a valid queue spec")
}

pub fn named(name: &str) -> NamedSpec {
    NamedSpec {
        name: name.into(),
        description: String::new(),
    }
}

pub fn device(username: &str, short: &str) -> DeviceSpec {
    DeviceSpec {
        kind: DeviceKind::SipPhone,
        name: format!("{username}'s phone"),
        owner: None,
        sip_username: Some(username.into()),
        short_number: Some(short.into()),
        external_number: None,
    }
}

impl Fixture {
    /// Runs a command; a refusal comes back as its code.
    pub fn run(&mut self, command: Command) -> Result<Outcome, RefusalCode> {
        self.ledger.execute(command, NOW_MS).map_err(|r| r.code)
    }

    /// Runs a command that must create something; its id.
    pub fn create(&mut self, command: Command) -> u64 {
        match self.run(command) {
            Ok(Outcome::Created { id }) => id,
            other => panic!("expected a creation, got {other:?}"),
        }
    }

    /// Creates a user with an optional password and PIN.
    pub fn add_user(
        &mut self,
        spec: UserSpec,
        password: Option<&str>,
        pin: Option<&str>,
    ) -> Result<UserId, RefusalCode> {
        let password = password.map(|p| hash_panel_password(p, &[1; 16], &TENANT_SALT));
        let pin_fingerprint = pin.map(|p| pin_fingerprint(p, &TENANT_SALT));
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

    pub fn new() -> Self {
        let mut ledger = Ledger::default();
        let mut run = |c: Command| match ledger.execute(c, NOW_MS) {
            Ok(Outcome::Created { id }) => id,
            Ok(_) => 0,
            Err(r) => panic!("fixture command refused: {r}"),
        };
        run(Command::Bootstrap {
            signing_key_hex: "ab".repeat(32),
        });
        let spec = |name: &str, domain: &str| TenantSpec {
            name: name.into(),
            sip_domain: domain.into(),
        };
        let tenant = TenantId(run(Command::CreateTenant {
            spec: spec("T", "t.test"),
            fingerprint_salt_hex: hex(&TENANT_SALT),
        }));
        let other_tenant = TenantId(run(Command::CreateTenant {
            spec: spec("O", "o.test"),
            fingerprint_salt_hex: hex(&TENANT_SALT),
        }));
        let branch = BranchId(run(Command::CreateBranch {
            tenant,
            spec: BranchSpec {
                name: "Prague".into(),
                country: "CZ".into(),
                timezone: "Europe/Prague".into(),
            },
        }));
        let skill = SkillId(run(Command::CreateSkill {
            tenant,
            spec: named("English"),
        }));
        let group = GroupId(run(Command::CreateGroup {
            tenant,
            spec: named("Tier 1"),
        }));
        let pause = PauseTypeId(run(Command::CreatePauseType {
            tenant,
            spec: PauseTypeSpec {
                name: "Lunch".into(),
                paid: false,
                max_duration_s: Some(1800),
            },
        }));
        let queue = QueueId(run(Command::CreateQueue {
            tenant,
            spec: queue_spec("Support"),
        }));
        run(Command::BuyDevicePackages { tenant, count: 1 });
        let mut fixture = Fixture {
            ledger,
            tenant,
            other_tenant,
            branch,
            skill,
            group,
            pause,
            queue,
            admin: UserId(0),
            agents: Vec::new(),
            uc_user: UserId(0),
            back_office: UserId(0),
            phone: DeviceId(0),
            other_user: UserId(0),
        };
        fixture.admin = fixture
            .add_user(
                user(
                    UserKind::ContactCentre,
                    &[Role::SystemAdministrator],
                    "admin",
                ),
                Some("Admin-Password-1!"),
                None,
            )
            .expect("admin");
        for i in 0..3 {
            let agent = fixture
                .add_user(
                    user(
                        UserKind::ContactCentre,
                        &[Role::Agent],
                        &format!("agent{i}"),
                    ),
                    None,
                    None,
                )
                .expect("agent");
            fixture.agents.push(agent);
        }
        fixture.uc_user = fixture
            .add_user(
                user(
                    UserKind::ContactCentre,
                    &[Role::PbxUser, Role::UcUser],
                    "uc",
                ),
                None,
                None,
            )
            .expect("uc user");
        fixture.back_office = fixture
            .add_user(
                user(UserKind::BackOffice, &[Role::PbxUser], "desk"),
                None,
                None,
            )
            .expect("desk");
        let secret = sip_ha1("desk", "t.test", "Desk-Password-1!");
        fixture.phone = DeviceId(fixture.create(Command::CreateDevice {
            tenant,
            spec: device("desk", "100"),
            sip_secret: Some(secret),
        }));
        let other = fixture.ledger.execute(
            Command::CreateUser {
                tenant: other_tenant,
                spec: user(UserKind::ContactCentre, &[Role::Agent], "elsewhere"),
                password: None,
                pin_fingerprint: None,
            },
            NOW_MS,
        );
        fixture.other_user = match other {
            Ok(Outcome::Created { id }) => UserId(id),
            other => panic!("other tenant's user: {other:?}"),
        };
        fixture
    }

    /// Seats in use and pool of `kind` in the fixture's tenant.
    pub fn seats(&self, kind: LicenceKind) -> (u32, u32) {
        let report = self
            .ledger
            .tenant(self.tenant)
            .expect("tenant")
            .licence_report(NOW_MS);
        let line = report.kinds.iter().find(|k| k.kind == kind).expect("kind");
        (line.in_use, line.pool)
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn roles(list: &[Role]) -> BTreeSet<Role> {
    list.iter().copied().collect()
}
