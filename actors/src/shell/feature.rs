//! The feature-code call's shell. It shares the call actors' message type
//! (the host keeps every call of its node in one table).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{write, CallActorMsg, Services};
use crate::feature::{FeatureInput, FeatureMachine, FeatureOutput, FeatureSetup, FeatureSnapshot};
use crate::ledger::{Command, Ledger};
use crate::messages::{Address, CallMsg, Envelope, LegNotice, Message};
use crate::model::credentials::pin_fingerprint;
use crate::model::user::Role;
use crate::model::{TenantId, UserId};

/// The feature-code call actor.
pub struct FeatureActor<S: Services> {
    services: Arc<S>,
}

impl<S: Services> std::fmt::Debug for FeatureActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeatureActor").finish_non_exhaustive()
    }
}

impl<S: Services> FeatureActor<S> {
    /// A feature actor using `services`.
    pub fn new(services: Arc<S>) -> Self {
        FeatureActor { services }
    }
}

/// State of the feature actor.
#[derive(Debug)]
pub struct FeatureState {
    machine: FeatureMachine,
    setup: FeatureSetup,
}

/// What a feature call reads of the ledger.
fn snapshot(ledger: &Ledger, setup: &FeatureSetup) -> FeatureSnapshot {
    let Some(t) = ledger.tenant(setup.tenant) else {
        return FeatureSnapshot::default();
    };
    let device = t.device(setup.device);
    let is_agent = |u: &UserId| {
        t.find_user(*u)
            .is_some_and(|u| u.spec.roles.contains(&Role::Agent))
    };
    let agent = device.and_then(|d| {
        d.bound_to
            .filter(is_agent)
            .or(d.spec.owner.filter(is_agent))
    });
    let mut pause_types: Vec<_> = t
        .pause_types()
        .map(|p| crate::model::PauseTypeId(p.id))
        .collect();
    pause_types.sort();
    FeatureSnapshot {
        terminals: agent
            .and_then(|a| t.session(a))
            .map(|s| s.terminals.iter().cloned().collect())
            .unwrap_or_default(),
        agent,
        pause_types,
    }
}

/// Whether `pin` is `agent`'s PIN (its tenant-salted fingerprint matches).
async fn pin_matches(
    ledger: &carillon_consensus::Consensus<Ledger>,
    tenant: TenantId,
    agent: UserId,
    pin: String,
) -> bool {
    let stored = ledger.read_local(|l| {
        let t = l.tenant(tenant)?;
        let salt = hex::decode(&t.info().fingerprint_salt_hex).ok()?;
        Some((salt, t.find_user(agent)?.pin_fingerprint.clone()?))
    });
    let Some((salt, stored)) = stored else {
        return false;
    };
    // argon2id: tens of milliseconds; off the async workers.
    tokio::task::spawn_blocking(move || pin_fingerprint(&pin, &salt) == stored)
        .await
        .unwrap_or(false)
}

impl<S: Services> FeatureActor<S> {
    async fn run(
        &self,
        myself: &ActorRef<CallActorMsg>,
        state: &mut FeatureState,
        input: FeatureInput,
    ) {
        let mut inputs = VecDeque::from([input]);
        let mut steps = 0;
        while let Some(input) = inputs.pop_front() {
            steps += 1;
            assert!(steps < 256, "a feature call's inputs settle within a step");
            for output in state.machine.handle(self.services.now_ms(), input) {
                match output {
                    FeatureOutput::Media { step, request } => {
                        let result = self
                            .services
                            .media(&state.setup.relay, &state.setup.call, request)
                            .await;
                        inputs.push_back(FeatureInput::Media { step, result });
                    }
                    FeatureOutput::CheckPin { agent, pin } => {
                        let matches =
                            pin_matches(self.services.consensus(), state.setup.tenant, agent, pin)
                                .await;
                        inputs.push_back(FeatureInput::PinChecked { matches });
                    }
                    FeatureOutput::Ledger(command) => {
                        let label = format!("feature/{}", state.setup.call);
                        let result = write(&*self.services, &label, *command).await;
                        inputs.push_back(FeatureInput::Ledger { result });
                    }
                    FeatureOutput::Edge(request) => self.services.send(Envelope {
                        to: Address::Edge {
                            node: state.setup.node,
                        },
                        message: Message::Edge(request),
                        hops: 0,
                    }),
                    FeatureOutput::Timer { after_ms } => {
                        myself.send_after(Duration::from_millis(after_ms), || {
                            CallActorMsg::Message(CallMsg::Timer { timer: 0 })
                        });
                    }
                    FeatureOutput::Stop => {
                        let record = state.machine.record(self.services.now_ms());
                        let label = format!("feature/{}/close", state.setup.call);
                        let command = Command::CloseActivity {
                            tenant: state.setup.tenant,
                            record: Box::new(record),
                        };
                        if let Err(e) = write(&*self.services, &label, command).await {
                            tracing::debug!(error = ?e, "the feature call's record was not written");
                        }
                        myself.stop(None);
                    }
                }
            }
        }
    }
}

impl<S: Services> Actor for FeatureActor<S> {
    type Msg = CallActorMsg;
    type State = FeatureState;
    type Arguments = FeatureSetup;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        setup: FeatureSetup,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(FeatureState {
            machine: FeatureMachine::new(setup.clone()),
            setup,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let setup = state.setup.clone();
        let s = self
            .services
            .consensus()
            .read_local(|l| snapshot(l, &setup));
        self.run(&myself, state, FeatureInput::Start(s)).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let CallActorMsg::Message(m) = message;
        let input = match m {
            CallMsg::Timer { .. } => FeatureInput::Tick,
            CallMsg::Leg {
                event: LegNotice::Ended { .. },
                ..
            } => FeatureInput::Ended,
            _ => return Ok(()),
        };
        self.run(&myself, state, input).await;
        Ok(())
    }
}
