//! Every refusal code (V6) with a scenario that produces it, through the
//! ledger or the validation functions the API calls before hashing secrets.
//! The test fails if a code has no scenario, so the table cannot go stale.

mod common;

use carillon_actors::ledger::{Command, Outcome, TokenOwner};
use carillon_actors::model::credentials::{
    validate_panel_password, validate_pin, validate_sip_password,
};
use carillon_actors::model::directory::{BranchSpec, DeviceKind, NumberTarget, TenantSpec};
use carillon_actors::model::licence::{LicenceKind, LicenceRank};
use carillon_actors::model::user::{Role, UserKind, UserSpec};
use carillon_actors::model::{BranchId, RefusalCode, TenantId, UserId};
use common::{device, named, roles, user, Fixture, NOW_MS};
use std::collections::BTreeSet;

type Scenario = fn(&mut Fixture) -> Result<Outcome, RefusalCode>;

fn agent_spec(login: &str, patch: serde_json::Value) -> UserSpec {
    let mut value =
        serde_json::to_value(user(UserKind::ContactCentre, &[Role::Agent], login)).expect("json");
    for (k, v) in patch.as_object().expect("object") {
        value[k] = v.clone();
    }
    serde_json::from_value(value).expect("a spec")
}

fn queue_with(patch: serde_json::Value) -> carillon_actors::model::queue::QueueSpec {
    let mut value = serde_json::json!({"name": "Q2"});
    for (k, v) in patch.as_object().expect("object") {
        value[k] = v.clone();
    }
    serde_json::from_value(value).expect("a queue spec")
}

fn create_user(f: &mut Fixture, spec: UserSpec) -> Result<Outcome, RefusalCode> {
    f.add_user(spec, None, None)
        .map(|id| Outcome::Created { id: id.0 })
}

fn login(f: &mut Fixture, user: UserId) -> Result<Outcome, RefusalCode> {
    f.run(Command::Login {
        tenant: f.tenant,
        user,
        terminal: "panel".into(),
    })
}

/// A panel-enabled agent.
fn panel_agent(f: &mut Fixture, login: &str) -> UserId {
    f.add_user(
        agent_spec(login, serde_json::json!({"panel_access": true})),
        None,
        None,
    )
    .expect("agent")
}

fn table() -> Vec<(RefusalCode, &'static str, Scenario)> {
    use RefusalCode as R;
    vec![
        (
            R::NotFound,
            "an object of another tenant is not found",
            |f| {
                f.run(Command::DeleteUser {
                    tenant: f.tenant,
                    user: f.other_user,
                })
            },
        ),
        (R::AlreadyBootstrapped, "bootstrap happens once", |f| {
            f.run(Command::Bootstrap {
                signing_key_hex: "cd".repeat(32),
            })
        }),
        (R::NameRequired, "a branch needs a name", |f| {
            f.run(Command::CreateBranch {
                tenant: f.tenant,
                spec: BranchSpec {
                    name: " ".into(),
                    country: "CZ".into(),
                    timezone: "UTC".into(),
                },
            })
        }),
        (
            R::NameNotUnique,
            "skill names are unique in a tenant",
            |f| {
                f.run(Command::CreateSkill {
                    tenant: f.tenant,
                    spec: named("english"),
                })
            },
        ),
        (R::SipDomainInvalid, "a SIP domain is a host name", |f| {
            f.run(Command::CreateTenant {
                spec: TenantSpec {
                    name: "X".into(),
                    sip_domain: "bad domain".into(),
                },
                fingerprint_salt_hex: "00".into(),
            })
        }),
        (
            R::SipDomainNotUnique,
            "a SIP domain belongs to one tenant",
            |f| {
                f.run(Command::CreateTenant {
                    spec: TenantSpec {
                        name: "X".into(),
                        sip_domain: "t.test".into(),
                    },
                    fingerprint_salt_hex: "00".into(),
                })
            },
        ),
        (R::CountryInvalid, "ISO 3166 alpha-2", |f| {
            f.run(Command::CreateBranch {
                tenant: f.tenant,
                spec: BranchSpec {
                    name: "B".into(),
                    country: "Czechia".into(),
                    timezone: "UTC".into(),
                },
            })
        }),
        (R::TimezoneInvalid, "IANA zone names", |f| {
            f.run(Command::CreateBranch {
                tenant: f.tenant,
                spec: BranchSpec {
                    name: "B".into(),
                    country: "CZ".into(),
                    timezone: "Prague".into(),
                },
            })
        }),
        (R::BranchInUse, "a branch with users stays", |f| {
            let spec = agent_spec("branched", serde_json::json!({"branch": f.branch}));
            create_user(f, spec)?;
            f.run(Command::DeleteBranch {
                tenant: f.tenant,
                branch: f.branch,
            })
        }),
        (R::ObjectInUse, "a skill used by a queue stays", |f| {
            let spec = queue_with(
                serde_json::json!({"required_skills": [{"skill": f.skill, "min_level": 2}]}),
            );
            f.run(Command::CreateQueue {
                tenant: f.tenant,
                spec,
            })?;
            f.run(Command::DeleteSkill {
                tenant: f.tenant,
                skill: f.skill,
            })
        }),
        (R::LoginInvalid, "logins have a character set", |f| {
            create_user(f, agent_spec("no spaces", serde_json::json!({})))
        }),
        (
            R::LoginNotUnique,
            "V4: logins are unique in a tenant",
            |f| create_user(f, agent_spec("ADMIN", serde_json::json!({}))),
        ),
        (R::EmailInvalid, "an e-mail has an @ and a domain", |f| {
            create_user(f, agent_spec("ex", serde_json::json!({"email": "nobody"})))
        }),
        (R::PhoneNumberInvalid, "a mobile is a phone number", |f| {
            create_user(
                f,
                agent_spec("mx", serde_json::json!({"mobile": "call me"})),
            )
        }),
        (R::RoleRequired, "a user holds a role", |f| {
            create_user(f, agent_spec("rx", serde_json::json!({"roles": []})))
        }),
        (R::UcRequiresPbxRole, "U3: UC needs PBX", |f| {
            create_user(
                f,
                agent_spec("ux", serde_json::json!({"roles": ["uc_user"]})),
            )
        }),
        (
            R::BackOfficeCannotLogIn,
            "U2: back-office users never log in",
            |f| {
                create_user(
                    f,
                    agent_spec(
                        "bx",
                        serde_json::json!({"kind": "back_office", "panel_access": false}),
                    ),
                )
            },
        ),
        (
            R::ScopeNotAllowed,
            "only supervisors and team administrators have a scope",
            |f| {
                let spec = agent_spec("sx", serde_json::json!({"scope": {"branches": [f.branch]}}));
                create_user(f, spec)
            },
        ),
        (R::SkillLevelInvalid, "A7: levels 1 to 10", |f| {
            let spec = agent_spec(
                "kx",
                serde_json::json!({"skills": [{"skill": f.skill, "level": 11}]}),
            );
            create_user(f, spec)
        }),
        (R::PinTooShort, "V1", |_| {
            validate_pin("1357")
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PinNotDigits, "V1", |_| {
            validate_pin("13a57")
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PinSequential, "V1", |_| {
            validate_pin("98765")
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PinRepeatedDigit, "V1", |_| {
            validate_pin("77777")
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PinNotUnique, "V1: unique in the tenant", |f| {
            f.add_user(agent_spec("p1", serde_json::json!({})), None, Some("40718"))?;
            f.add_user(agent_spec("p2", serde_json::json!({})), None, Some("40718"))
                .map(|_| Outcome::Done)
        }),
        (
            R::PasswordTooShortForRole,
            "V2: 12 for administrators",
            |_| {
                validate_panel_password(
                    "Abcdefgh1!x",
                    &roles(&[Role::Agent, Role::SystemAdministrator]),
                )
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
            },
        ),
        (R::PasswordMissingUppercase, "V2", |_| {
            validate_panel_password("abcdefgh1!", &roles(&[Role::Agent]))
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PasswordMissingDigit, "V2", |_| {
            validate_panel_password("Abcdefgh!!", &roles(&[Role::Agent]))
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (R::PasswordMissingSpecial, "V2", |_| {
            validate_panel_password("Abcdefgh12", &roles(&[Role::Agent]))
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (
            R::PasswordNotUnique,
            "V2: different from every other user's",
            |f| {
                f.add_user(
                    agent_spec("pw", serde_json::json!({"panel_access": true})),
                    Some("Admin-Password-1!"),
                    None,
                )
                .map(|_| Outcome::Done)
            },
        ),
        (
            R::PasswordNotAllowed,
            "U2: back-office users have no panel password",
            |f| {
                f.add_user(
                    user(UserKind::BackOffice, &[Role::PbxUser], "bo"),
                    Some("Back-Office-1!"),
                    None,
                )
                .map(|_| Outcome::Done)
            },
        ),
        (R::SipPasswordTooWeak, "V3", |_| {
            validate_sip_password("Weak1!")
                .map(|_| Outcome::Done)
                .map_err(|r| r.code)
        }),
        (
            R::SipUsernameInvalid,
            "D7: registering devices have a SIP username",
            |f| {
                let mut spec = device("x", "101");
                spec.sip_username = None;
                f.run(Command::CreateDevice {
                    tenant: f.tenant,
                    spec,
                    sip_secret: None,
                })
            },
        ),
        (R::SipUsernameNotUnique, "D7: unique in the tenant", |f| {
            let secret =
                carillon_actors::model::credentials::sip_ha1("desk", "t.test", "Desk-Password-2!");
            f.run(Command::CreateDevice {
                tenant: f.tenant,
                spec: device("desk", "101"),
                sip_secret: Some(secret),
            })
        }),
        (
            R::SipCredentialsRequired,
            "D7: a registering device has a password",
            |f| {
                f.run(Command::CreateDevice {
                    tenant: f.tenant,
                    spec: device("nosecret", "101"),
                    sip_secret: None,
                })
            },
        ),
        (R::ShortNumberInvalid, "V4: at least 3 digits", |f| {
            f.run(Command::CreateDevice {
                tenant: f.tenant,
                spec: device("x", "12"),
                sip_secret: None,
            })
        }),
        (R::ShortNumberNotUnique, "V4: unique in the tenant", |f| {
            let secret =
                carillon_actors::model::credentials::sip_ha1("y", "t.test", "Yy-Password-1!");
            f.run(Command::CreateDevice {
                tenant: f.tenant,
                spec: device("y", "100"),
                sip_secret: Some(secret),
            })
        }),
        (
            R::ExternalNumberRequired,
            "D1: mobiles have a number",
            |f| {
                let mut spec = device("m", "102");
                spec.kind = DeviceKind::Mobile;
                spec.sip_username = None;
                f.run(Command::CreateDevice {
                    tenant: f.tenant,
                    spec,
                    sip_secret: None,
                })
            },
        ),
        (R::DevicePackageLimit, "L1: ten devices per package", |f| {
            for i in 0..10 {
                let mut spec = device(&format!("d{i}"), &format!("2{i:02}"));
                spec.kind = DeviceKind::External;
                spec.sip_username = None;
                spec.external_number = Some(format!("+42060000000{i}"));
                f.run(Command::CreateDevice {
                    tenant: f.tenant,
                    spec,
                    sip_secret: None,
                })?;
            }
            for i in 0..9 {
                let secret =
                    carillon_actors::model::credentials::sip_ha1("s", "t.test", "Ss-Password-1!");
                f.run(Command::CreateDevice {
                    tenant: f.tenant,
                    spec: device(&format!("s{i}"), &format!("3{i:02}")),
                    sip_secret: Some(secret),
                })?;
            }
            let secret =
                carillon_actors::model::credentials::sip_ha1("s", "t.test", "Ss-Password-1!");
            f.run(Command::CreateDevice {
                tenant: f.tenant,
                spec: device("eleventh", "399"),
                sip_secret: Some(secret),
            })
        }),
        (
            R::RingPlanInvalid,
            "D3: steps ring the user's own devices",
            |f| {
                let spec = agent_spec(
                    "rp",
                    serde_json::json!({"ring_plan": {"mode": "staged", "steps": [{"delay_s": 0, "devices": [f.phone]}]}}),
                );
                create_user(f, spec)
            },
        ),
        (
            R::BindingInvalid,
            "D4: a fixed binding names a device",
            |f| {
                create_user(
                    f,
                    agent_spec(
                        "bd",
                        serde_json::json!({"binding": {"mode": "fixed", "device": 999_999}}),
                    ),
                )
            },
        ),
        (R::NumberNotUnique, "V5: a DID has one owner", |f| {
            f.run(Command::AddNumber {
                tenant: f.tenant,
                e164: "+420225000100".into(),
            })?;
            f.run(Command::AddNumber {
                tenant: f.other_tenant,
                e164: "+420225000100".into(),
            })
        }),
        (R::DidNotOwned, "V5: only an owned DID is assigned", |f| {
            f.run(Command::AddNumber {
                tenant: f.other_tenant,
                e164: "+420225000101".into(),
            })?;
            f.run(Command::AssignNumber {
                tenant: f.tenant,
                e164: "+420225000101".into(),
                target: NumberTarget::Queue { queue: f.queue },
            })
        }),
        (
            R::DidAlreadyAssigned,
            "V5: only a free DID is assigned",
            |f| {
                f.run(Command::AddNumber {
                    tenant: f.tenant,
                    e164: "+420225000102".into(),
                })?;
                let target = NumberTarget::Queue { queue: f.queue };
                f.run(Command::AssignNumber {
                    tenant: f.tenant,
                    e164: "+420225000102".into(),
                    target: target.clone(),
                })?;
                f.run(Command::AssignNumber {
                    tenant: f.tenant,
                    e164: "+420225000102".into(),
                    target,
                })
            },
        ),
        (R::DidNotAssigned, "releasing a free DID", |f| {
            f.run(Command::AddNumber {
                tenant: f.tenant,
                e164: "+420225000103".into(),
            })?;
            f.run(Command::ReleaseNumber {
                tenant: f.tenant,
                e164: "+420225000103".into(),
            })
        }),
        (R::CountInvalid, "L3: counts are positive", |f| {
            f.run(Command::BuyLicences {
                tenant: f.tenant,
                kind: LicenceKind::Voice,
                count: 0,
            })
        }),
        (R::LicenceNotNeeded, "L2: administrators are free", |f| {
            f.run(Command::AssignLicence {
                tenant: f.tenant,
                user: f.admin,
                kind: LicenceKind::Voice,
            })
        }),
        (
            R::LicencePoolExhausted,
            "V5/L6: no seat beyond the pool",
            |f| {
                f.run(Command::AssignLicence {
                    tenant: f.tenant,
                    user: f.agents[0],
                    kind: LicenceKind::Voice,
                })
            },
        ),
        (R::LicenceAlreadyAssigned, "one seat per need", |f| {
            f.run(Command::BuyLicences {
                tenant: f.tenant,
                kind: LicenceKind::Voice,
                count: 2,
            })?;
            f.run(Command::AssignLicence {
                tenant: f.tenant,
                user: f.agents[0],
                kind: LicenceKind::Voice,
            })?;
            f.run(Command::AssignLicence {
                tenant: f.tenant,
                user: f.agents[0],
                kind: LicenceKind::Voice,
            })
        }),
        (
            R::LicenceNotAssigned,
            "releasing a seat the user does not hold",
            |f| {
                f.run(Command::ReleaseLicence {
                    tenant: f.tenant,
                    user: f.agents[0],
                    kind: LicenceKind::Chat,
                })
            },
        ),
        (
            R::WithdrawalExceedsFreeSeats,
            "L3: a withdrawal never takes a seat in use",
            |f| {
                f.run(Command::BuyLicences {
                    tenant: f.tenant,
                    kind: LicenceKind::Voice,
                    count: 1,
                })?;
                f.run(Command::AssignLicence {
                    tenant: f.tenant,
                    user: f.agents[0],
                    kind: LicenceKind::Voice,
                })?;
                f.run(Command::WithdrawLicences {
                    tenant: f.tenant,
                    kind: LicenceKind::Voice,
                    count: 1,
                })
            },
        ),
        (R::LicenceRanksInvalid, "L5: a kind has one rank", |f| {
            let ranks = vec![
                LicenceRank {
                    kind: LicenceKind::Voice,
                    rank: 1,
                },
                LicenceRank {
                    kind: LicenceKind::Voice,
                    rank: 2,
                },
            ];
            f.run(Command::SetLicenceRanks {
                tenant: f.tenant,
                ranks,
            })
        }),
        (
            R::QueueConfigInvalid,
            "Q1: skills-based routing needs skills",
            |f| {
                f.run(Command::CreateQueue {
                    tenant: f.tenant,
                    spec: queue_with(serde_json::json!({"strategy": {"kind": "skills_based"}})),
                })
            },
        ),
        (R::QueueFull, "Q5: maximum length", |f| {
            let q = carillon_actors::model::QueueId(f.create(Command::CreateQueue {
                tenant: f.tenant,
                spec: queue_with(serde_json::json!({"max_length": 1})),
            }));
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: q,
                entry: "a".into(),
                priority: None,
            })?;
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: q,
                entry: "b".into(),
                priority: None,
            })
        }),
        (R::NotLoggedIn, "A1: check-in needs a login", |f| {
            f.run(Command::CheckIn {
                tenant: f.tenant,
                user: f.agents[0],
                queue: f.queue,
            })
        }),
        (R::AlreadyLoggedIn, "A1: a terminal logs in once", |f| {
            let agent = panel_agent(f, "twice");
            login(f, agent)?;
            login(f, agent)
        }),
        (
            R::AgentCannotLogIn,
            "A1: only agents with panel access log in",
            |f| login(f, f.admin),
        ),
        (R::NotCheckedIn, "A1", |f| {
            let agent = panel_agent(f, "out");
            login(f, agent)?;
            f.run(Command::CheckOut {
                tenant: f.tenant,
                user: agent,
                queue: f.queue,
            })
        }),
        (R::AlreadyCheckedIn, "A1", |f| {
            let agent = panel_agent(f, "in");
            login(f, agent)?;
            f.run(Command::CheckIn {
                tenant: f.tenant,
                user: agent,
                queue: f.queue,
            })?;
            f.run(Command::CheckIn {
                tenant: f.tenant,
                user: agent,
                queue: f.queue,
            })
        }),
        (R::NotPaused, "A5", |f| {
            let agent = panel_agent(f, "np");
            login(f, agent)?;
            f.run(Command::Unpause {
                tenant: f.tenant,
                user: agent,
            })
        }),
        (R::AlreadyPaused, "A5", |f| {
            let agent = panel_agent(f, "ap");
            login(f, agent)?;
            f.run(Command::Pause {
                tenant: f.tenant,
                user: agent,
                pause_type: f.pause,
            })?;
            f.run(Command::Pause {
                tenant: f.tenant,
                user: agent,
                pause_type: f.pause,
            })
        }),
        (R::ActivityUnknown, "A4", |f| {
            let agent = panel_agent(f, "au");
            login(f, agent)?;
            f.run(Command::EndActivity {
                tenant: f.tenant,
                user: agent,
                activity: "never".into(),
            })
        }),
        (R::EntryNotUnique, "Q3", |f| {
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: f.queue,
                entry: "e".into(),
                priority: None,
            })?;
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: f.queue,
                entry: "e".into(),
                priority: None,
            })
        }),
        (
            R::EntryNotWaiting,
            "Q3: an abandoned caller is not assigned",
            |f| {
                f.run(Command::Enqueue {
                    tenant: f.tenant,
                    queue: f.queue,
                    entry: "e".into(),
                    priority: None,
                })?;
                f.run(Command::AbandonEntry {
                    tenant: f.tenant,
                    entry: "e".into(),
                })?;
                f.run(Command::AssignEntry {
                    tenant: f.tenant,
                    entry: "e".into(),
                    user: f.agents[0],
                })
            },
        ),
        (R::EntryAlreadyAssigned, "Q3: assigned exactly once", |f| {
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: f.queue,
                entry: "e".into(),
                priority: None,
            })?;
            f.run(Command::AssignEntry {
                tenant: f.tenant,
                entry: "e".into(),
                user: f.agents[0],
            })?;
            f.run(Command::AssignEntry {
                tenant: f.tenant,
                entry: "e".into(),
                user: f.agents[1],
            })
        }),
        (R::PriorityInvalid, "Q3: priorities 0 to 100", |f| {
            f.run(Command::Enqueue {
                tenant: f.tenant,
                queue: f.queue,
                entry: "e".into(),
                priority: Some(101),
            })
        }),
        (R::TokenNameInvalid, "API tokens are named", |f| {
            f.run(Command::CreateApiToken {
                owner: TokenOwner::User {
                    tenant: f.tenant,
                    user: f.admin,
                },
                name: String::new(),
                token_hash: "h".into(),
            })
        }),
    ]
}

#[test]
fn every_refusal_code_has_a_scenario_that_produces_it() {
    let table = table();
    let mut seen = BTreeSet::new();
    for (code, what, scenario) in &table {
        let mut fixture = Fixture::new();
        let result = scenario(&mut fixture);
        assert_eq!(result, Err(*code), "{code}: {what}");
        fixture.ledger.check_invariants();
        seen.insert(format!("{code}"));
    }
    let missing: Vec<String> = RefusalCode::ALL
        .iter()
        .map(|c| format!("{c}"))
        .filter(|c| !seen.contains(c))
        .collect();
    assert!(missing.is_empty(), "codes without a scenario: {missing:?}");
}

#[test]
fn a_refused_command_changes_nothing_and_its_message_names_the_rule() {
    let mut fixture = Fixture::new();
    let before = fixture.ledger.clone();
    let refused = fixture.ledger.execute(
        Command::CreateUser {
            tenant: fixture.tenant,
            spec: agent_spec("admin", serde_json::json!({})),
            password: None,
            pin_fingerprint: None,
        },
        NOW_MS,
    );
    let refusal = refused.expect_err("login taken");
    assert_eq!(refusal.code, RefusalCode::LoginNotUnique);
    assert!(refusal.message.starts_with("V4: "), "{}", refusal.message);
    assert_eq!(fixture.ledger, before, "nothing half-applied");
    for code in RefusalCode::ALL {
        let message = carillon_actors::model::Refusal::new(*code, "x").message;
        assert!(
            message.starts_with(&format!("{}: ", code.rule())),
            "{message}"
        );
    }
    // Nothing crosses tenants: the other tenant's branch id is not found here.
    let theirs = BranchId(fixture.create(Command::CreateBranch {
        tenant: fixture.other_tenant,
        spec: BranchSpec {
            name: "Theirs".into(),
            country: "PL".into(),
            timezone: "Europe/Warsaw".into(),
        },
    }));
    assert_eq!(
        fixture.run(Command::DeleteBranch {
            tenant: fixture.tenant,
            branch: theirs
        }),
        Err(RefusalCode::NotFound)
    );
    assert_eq!(
        fixture.run(Command::RenameTenant {
            tenant: TenantId(999_999),
            name: "x".into()
        }),
        Err(RefusalCode::NotFound)
    );
}
