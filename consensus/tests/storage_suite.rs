//! openraft's own storage conformance suite against the redb store.

mod common;

use carillon_consensus::store::{self, LogStore, StateMachineStore};
use carillon_consensus::TypeConfig;
use common::Counters;
use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use tempfile::TempDir;

struct RedbBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore<Counters>, TempDir> for RedbBuilder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore, StateMachineStore<Counters>), StorageError<u64>> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (log, machine) = store::open::<Counters>(&dir.path().join("raft.redb"))?;
        Ok((dir, log, machine))
    }
}

#[test]
fn redb_store_passes_the_openraft_storage_suite() {
    Suite::test_all(RedbBuilder).expect("every storage conformance test passes");
}
