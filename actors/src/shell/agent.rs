//! The agent actor's shell.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{write, Services};
use crate::agent::{agent_snapshot, AgentEvent, AgentInput, AgentMachine, AgentOutput};
use crate::messages::AgentMsg;
use crate::model::{TenantId, UserId};

/// How often an agent actor re-reads the ledger even without a change
/// (a message lost with a node is recovered within this).
pub const AGENT_REFRESH: Duration = Duration::from_secs(5);

/// Messages of the agent actor.
#[derive(Debug)]
pub enum AgentActorMsg {
    /// A message from another actor, or a timer.
    Message(AgentMsg),
    /// Decide between the offers of the turn.
    Decide,
}

/// The agent actor.
pub struct AgentActor<S: Services> {
    services: Arc<S>,
}

impl<S: Services> std::fmt::Debug for AgentActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentActor").finish_non_exhaustive()
    }
}

impl<S: Services> AgentActor<S> {
    /// An agent actor using `services`.
    pub fn new(services: Arc<S>) -> Self {
        AgentActor { services }
    }
}

/// State of the agent actor.
#[derive(Debug)]
pub struct AgentState {
    machine: AgentMachine,
    tenant: TenantId,
    user: UserId,
}

impl<S: Services> AgentActor<S> {
    async fn run(
        &self,
        myself: &ActorRef<AgentActorMsg>,
        state: &mut AgentState,
        input: AgentInput,
    ) {
        let mut inputs = VecDeque::from([input]);
        let mut steps = 0;
        while let Some(input) = inputs.pop_front() {
            steps += 1;
            assert!(steps < 256, "an agent's inputs settle within a step");
            for output in state.machine.handle(self.services.now_ms(), input) {
                match output {
                    AgentOutput::Ledger { op, command } => {
                        let label = format!("agent/{}/{}", state.tenant, state.user);
                        let result = write(&*self.services, &label, *command).await;
                        inputs.push_back(AgentInput::Ledger { op, result });
                    }
                    AgentOutput::Send(envelope) => self.services.send(envelope),
                    AgentOutput::Timer { after_ms, message } => {
                        myself.send_after(Duration::from_millis(after_ms), move || {
                            AgentActorMsg::Message(message)
                        });
                    }
                    AgentOutput::DecideLater => {
                        let _ = myself.cast(AgentActorMsg::Decide);
                    }
                    AgentOutput::Refresh => {
                        if let Some(s) = self.snapshot(state) {
                            inputs.push_back(AgentInput::Snapshot(Box::new(s)));
                        }
                    }
                    AgentOutput::Event(AgentEvent::StateChanged {
                        state: s,
                        reason,
                        by,
                    }) => {
                        tracing::debug!(tenant = %state.tenant, agent = %state.user, state = ?s, %reason, by = %by.describe(), "agent state");
                    }
                }
            }
        }
    }

    fn snapshot(&self, state: &AgentState) -> Option<crate::agent::AgentSnapshot> {
        let (tenant, user) = (state.tenant, state.user);
        self.services
            .consensus()
            .read_local(|l| agent_snapshot(l, tenant, user))
    }
}

impl<S: Services> Actor for AgentActor<S> {
    type Msg = AgentActorMsg;
    type State = AgentState;
    type Arguments = (TenantId, UserId);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (tenant, user): (TenantId, UserId),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(AGENT_REFRESH, || AgentActorMsg::Message(AgentMsg::Refresh));
        Ok(AgentState {
            machine: AgentMachine::new(tenant, user),
            tenant,
            user,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(s) = self.snapshot(state) {
            self.run(&myself, state, AgentInput::Snapshot(Box::new(s)))
                .await;
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let input = match message {
            AgentActorMsg::Message(m) => AgentInput::Message(m),
            AgentActorMsg::Decide => AgentInput::Decide,
        };
        self.run(&myself, state, input).await;
        Ok(())
    }
}
