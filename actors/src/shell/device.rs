//! The device actor's shell.

use std::sync::Arc;

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::Services;
use crate::device::{device_snapshot, DeviceInput, DeviceMachine};
use crate::messages::DeviceMsg;
use crate::model::{DeviceId, TenantId};

/// Messages of the device actor.
#[derive(Debug)]
pub enum DeviceActorMsg {
    /// A message from another actor or a registrar.
    Message(DeviceMsg),
    /// Re-read the ledger.
    Refresh,
}

/// The device actor.
pub struct DeviceActor<S: Services> {
    services: Arc<S>,
}

impl<S: Services> std::fmt::Debug for DeviceActor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceActor").finish_non_exhaustive()
    }
}

impl<S: Services> DeviceActor<S> {
    /// A device actor using `services`.
    pub fn new(services: Arc<S>) -> Self {
        DeviceActor { services }
    }
}

/// State of the device actor.
#[derive(Debug)]
pub struct DeviceState {
    machine: DeviceMachine,
    tenant: TenantId,
    device: DeviceId,
}

impl<S: Services> DeviceActor<S> {
    fn feed(&self, state: &mut DeviceState, input: DeviceInput) {
        for envelope in state.machine.handle(input) {
            self.services.send(envelope);
        }
    }

    fn refresh(&self, state: &mut DeviceState) {
        let (tenant, device) = (state.tenant, state.device);
        if let Some(s) = self
            .services
            .consensus()
            .read_local(|l| device_snapshot(l, tenant, device))
        {
            self.feed(state, DeviceInput::Snapshot(s));
        }
    }
}

impl<S: Services> Actor for DeviceActor<S> {
    type Msg = DeviceActorMsg;
    type State = DeviceState;
    type Arguments = (TenantId, DeviceId);

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        (tenant, device): (TenantId, DeviceId),
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = DeviceState {
            machine: DeviceMachine::new(tenant, device),
            tenant,
            device,
        };
        self.refresh(&mut state);
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            DeviceActorMsg::Message(m) => self.feed(state, DeviceInput::Message(m)),
            DeviceActorMsg::Refresh => self.refresh(state),
        }
        Ok(())
    }
}
