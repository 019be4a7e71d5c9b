//! Snapshots (`ReplicatedState::snapshot`/`restore`): a ledger after a few
//! hundred mixed commands, applied through `ReplicatedState::apply` as
//! consensus does, restores to an equal value, and the restored copy goes on
//! answering and changing exactly like the original.
//!
//! The commands come from a small deterministic generator; its seed is
//! printed so a failure can be replayed.

mod common;

use carillon_actors::ledger::{Command, Ledger, Outcome, TokenOwner};
use carillon_actors::model::directory::{NamedSpec, NumberTarget};
use carillon_actors::model::licence::LicenceKind;
use carillon_actors::model::user::SkillLevel;
use carillon_actors::model::{DeviceId, QueueId, UserId};
use carillon_consensus::{ApplyContext, CommandId, ReplicatedState};
use common::{agent_spec, mobile, patched, queue_spec, sip_phone, sip_secret, Fixture, NOW_MS};
use serde_json::json;

const SEED: u64 = 0x5EED_CA11_0000_0001;
const COMMANDS: usize = 400;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        usize::try_from(x % n as u64).expect("fits")
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn pick_ref<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Ids the generator may name (some of them refused, which is fine).
struct Known {
    users: Vec<UserId>,
    queues: Vec<QueueId>,
    devices: Vec<DeviceId>,
    numbers: Vec<String>,
}

fn next_command(rng: &mut Rng, f: &Fixture, known: &Known, i: usize) -> Command {
    let tenant = f.tenant;
    let user = rng.pick(&known.users);
    let queue = rng.pick(&known.queues);
    let kind = rng.pick(&[
        LicenceKind::Voice,
        LicenceKind::Chat,
        LicenceKind::UcContactCard,
    ]);
    let terminal = rng.pick(&["panel", "phone"]).to_string();
    let activity = format!("call-{}", rng.below(4));
    let entry = format!("entry-{}", rng.below(40));
    match rng.below(26) {
        0 => Command::CreateUser {
            tenant,
            spec: agent_spec(&format!("gen{i}")),
            password: None,
            pin_fingerprint: None,
        },
        1 => Command::UpdateUser {
            tenant,
            user,
            spec: patched(&agent_spec(&format!("upd{i}")), json!({"email": "a@b.cz"})),
        },
        2 => Command::CreateDevice {
            tenant,
            spec: mobile(&format!("mobile {i}"), &format!("+42073{i:07}")),
            sip_secret: None,
        },
        3 => {
            let username = format!("sip{i}");
            let spec = sip_phone(&username, &format!("{}", 200 + i));
            Command::CreateDevice {
                tenant,
                spec,
                sip_secret: Some(sip_secret(&username)),
            }
        }
        4 => Command::DeleteDevice {
            tenant,
            device: rng.pick(&known.devices),
        },
        5 => Command::AddNumber {
            tenant,
            e164: format!("+42022{:07}", rng.below(8)),
        },
        6 => Command::AssignNumber {
            tenant,
            e164: rng.pick_ref(&known.numbers).clone(),
            target: NumberTarget::Queue { queue },
        },
        7 => Command::ReleaseNumber {
            tenant,
            e164: rng.pick_ref(&known.numbers).clone(),
        },
        8 => Command::CreateSkill {
            tenant,
            spec: NamedSpec {
                name: format!("skill {}", rng.below(10)),
                description: String::new(),
            },
        },
        9 => Command::CreateQueue {
            tenant,
            spec: patched(&queue_spec(&format!("queue {i}")), json!({"max_length": 5})),
        },
        10 => Command::BuyLicences {
            tenant,
            kind,
            count: 1,
        },
        11 => Command::WithdrawLicences {
            tenant,
            kind,
            count: 1,
        },
        12 => Command::AssignLicence { tenant, user, kind },
        13 => Command::ReleaseLicence { tenant, user, kind },
        14 => Command::BuyDevicePackages { tenant, count: 1 },
        15 | 16 => Command::Login {
            tenant,
            user,
            terminal,
        },
        17 => Command::Logout {
            tenant,
            user,
            terminal,
        },
        18 => Command::CheckIn {
            tenant,
            user,
            queue,
        },
        19 => Command::Pause {
            tenant,
            user,
            pause_type: rng.pick(&[f.pause, f.lunch]),
        },
        20 => match rng.below(3) {
            0 => Command::BeginActivity {
                tenant,
                user,
                activity,
            },
            1 => Command::EndActivity {
                tenant,
                user,
                activity,
            },
            _ => Command::Unpause { tenant, user },
        },
        21 => Command::Enqueue {
            call: None,
            tenant,
            queue,
            entry,
            priority: Some(u32::try_from(rng.below(101)).expect("small")),
        },
        22 => match rng.below(3) {
            0 => Command::AssignEntry {
                tenant,
                entry,
                user,
            },
            1 => Command::AbandonEntry { tenant, entry },
            _ => Command::ChangePriority {
                tenant,
                entry,
                priority: 7,
            },
        },
        23 => Command::BindDevice {
            tenant,
            user,
            device: rng.pick(&known.devices),
        },
        24 => match rng.below(2) {
            0 => Command::UnbindDevice { tenant, user },
            _ => Command::SetUserSkills {
                tenant,
                user,
                skills: vec![SkillLevel {
                    skill: f.skill,
                    level: u8::try_from(1 + rng.below(10)).expect("small"),
                }],
            },
        },
        _ => Command::CreateApiToken {
            owner: TokenOwner::User { tenant, user },
            name: format!("token {i}"),
            token_hash: format!("{i:064x}"),
        },
    }
}

fn context(index: usize) -> ApplyContext {
    ApplyContext {
        log_index: index as u64 + 1,
        proposed_at_ms: NOW_MS + index as u64 * 1_000,
        command_id: CommandId(format!("cmd-{index}")),
    }
}

#[test]
fn a_ledger_after_hundreds_of_mixed_commands_restores_to_an_equal_value() {
    println!("snapshot generator seed: {SEED:#x}");
    let mut rng = Rng(SEED);
    let mut f = Fixture::new();
    let mut known = Known {
        users: f
            .agents
            .iter()
            .copied()
            .chain([f.uc_user, f.admin, f.other_user])
            .collect(),
        queues: vec![f.queue, f.static_queue, f.other_queue],
        devices: vec![f.phone],
        numbers: (0..8).map(|n| format!("+42022{n:07}")).collect(),
    };
    let mut accepted = 0;
    for i in 0..COMMANDS {
        let command = next_command(&mut rng, &f, &known, i);
        let result = f.ledger.apply(command.clone(), &context(i));
        f.ledger.check_invariants();
        if let Ok(outcome) = result {
            accepted += 1;
            if let Outcome::Created { id } = outcome {
                match command {
                    Command::CreateUser { .. } => known.users.push(UserId(id)),
                    Command::CreateQueue { .. } => known.queues.push(QueueId(id)),
                    Command::CreateDevice { .. } => known.devices.push(DeviceId(id)),
                    _ => {}
                }
            }
        }
    }
    assert!(
        accepted > COMMANDS / 3,
        "the sequence does real work: {accepted} accepted"
    );
    let state = f.state();
    assert!(
        state.sessions().count() > 0,
        "sessions are part of the snapshot"
    );
    assert!(
        state.numbers().any(|n| n.target.is_some()),
        "assigned numbers too"
    );
    assert!(
        state.devices().any(|d| d.sip_secret.is_some()),
        "and device secrets"
    );
    assert!(
        state.devices().any(|d| d.bound_to.is_some()),
        "and line bindings"
    );

    let bytes = f.ledger.snapshot().expect("snapshot");
    let mut restored = Ledger::restore(&bytes).expect("restore");
    assert_eq!(restored, f.ledger);
    assert_eq!(
        restored.snapshot().expect("snapshot again"),
        bytes,
        "snapshots are canonical"
    );

    // The copy goes on exactly like the original.
    for i in COMMANDS..COMMANDS + 100 {
        let command = next_command(&mut rng, &f, &known, i);
        let original = f.ledger.apply(command.clone(), &context(i));
        let copy = restored.apply(command, &context(i));
        assert_eq!(copy, original, "command {i}");
    }
    assert_eq!(restored, f.ledger);
}

#[test]
fn a_damaged_snapshot_is_refused() {
    let f = Fixture::new();
    let bytes = f.ledger.snapshot().expect("snapshot");
    assert!(Ledger::restore(&bytes[..bytes.len() / 2]).is_err());
    assert!(
        Ledger::restore(b"{}").is_err(),
        "a snapshot has every field"
    );
    // Two devices with one SIP username: refused with the reason, not a panic.
    let mut f = Fixture::new();
    f.create(Command::CreateDevice {
        tenant: f.tenant,
        spec: sip_phone("desk2", "102"),
        sip_secret: Some(sip_secret("desk2")),
    });
    let text = String::from_utf8(f.ledger.snapshot().expect("snapshot")).expect("json");
    assert!(
        text.contains("\"sip_username\":\"desk2\""),
        "the snapshot names the device"
    );
    let twin = text.replace("\"sip_username\":\"desk2\"", "\"sip_username\":\"desk\"");
    let refused = Ledger::restore(twin.as_bytes()).expect_err("a duplicate SIP username");
    assert!(
        refused
            .to_string()
            .contains("SIP username \"desk\" belongs to two devices"),
        "{refused}"
    );
}
