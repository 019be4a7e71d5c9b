//! The queue actor's shell.

use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::{write, Services};
use crate::ledger::Command;
use crate::messages::QueueMsg;
use crate::model::{QueueId, TenantId};
use crate::queue::{queue_snapshot, QueueInput, QueueMachine, QueueOutput};

/// How often a queue actor reconciles with the ledger even without a change.
pub const QUEUE_REFRESH: Duration = Duration::from_secs(2);

/// Messages of the queue actor.
#[derive(Debug)]
pub enum QueueActorMsg {
    /// A message from another actor, or a timer.
    Message(QueueMsg),
}

/// The queue actor.
pub struct QueueActor<S: Services> {
    services: Arc<S>,
}

impl<S: Services> std::fmt::Debug for QueueActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueActor").finish_non_exhaustive()
    }
}

impl<S: Services> QueueActor<S> {
    /// A queue actor using `services`.
    pub fn new(services: Arc<S>) -> Self {
        QueueActor { services }
    }
}

/// State of the queue actor.
#[derive(Debug)]
pub struct QueueState {
    machine: QueueMachine,
    tenant: TenantId,
    queue: QueueId,
}

impl<S: Services> QueueActor<S> {
    async fn run(
        &self,
        myself: &ActorRef<QueueActorMsg>,
        state: &mut QueueState,
        input: QueueInput,
    ) {
        for output in state.machine.handle(self.services.now_ms(), input) {
            match output {
                QueueOutput::Send(envelope) => self.services.send(envelope),
                QueueOutput::Tick { after_ms } => {
                    myself.send_after(Duration::from_millis(after_ms), || {
                        QueueActorMsg::Message(QueueMsg::Tick)
                    });
                }
                QueueOutput::CloseLost(record) => {
                    let label =
                        format!("queue/{}/{}/lost/{}", state.tenant, state.queue, record.id);
                    let command = Command::CloseActivity {
                        tenant: state.tenant,
                        record,
                    };
                    if let Err(e) = write(&*self.services, &label, command).await {
                        tracing::debug!(error = ?e, "closing a lost call");
                    }
                }
            }
        }
    }

    fn snapshot(&self, state: &QueueState) -> Option<crate::queue::QueueSnapshot> {
        let (tenant, queue) = (state.tenant, state.queue);
        self.services
            .consensus()
            .read_local(|l| queue_snapshot(l, tenant, queue, |name| jiff::tz::db().get(name).ok()))
    }
}

impl<S: Services> Actor for QueueActor<S> {
    type Msg = QueueActorMsg;
    type State = QueueState;
    type Arguments = (TenantId, QueueId);

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        (tenant, queue): (TenantId, QueueId),
    ) -> Result<Self::State, ActorProcessingErr> {
        myself.send_interval(QUEUE_REFRESH, || QueueActorMsg::Message(QueueMsg::Refresh));
        Ok(QueueState {
            machine: QueueMachine::new(tenant, queue, queue.0 ^ self.services.nonce()),
            tenant,
            queue,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(s) = self.snapshot(state) {
            self.run(&myself, state, QueueInput::Snapshot(Box::new(s)))
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
        let QueueActorMsg::Message(m) = message;
        let input = match m {
            QueueMsg::Refresh => match self.snapshot(state) {
                Some(s) => QueueInput::Snapshot(Box::new(s)),
                None => return Ok(()),
            },
            other => QueueInput::Message(other),
        };
        self.run(&myself, state, input).await;
        Ok(())
    }
}
