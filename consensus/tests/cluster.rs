//! Three in-process consensus nodes on loopback: forwarding, idempotent
//! retries, linearizable reads from followers, leader failover, catching up
//! by snapshot, membership changes and restart from the data directory.

mod common;

use carillon_consensus::{
    CommandId, Consensus, ConsensusConfig, NodeAddr, RaftTiming, SystemClock,
};
use common::{CounterCommand, Counters};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").to_string()
}

fn timing() -> RaftTiming {
    RaftTiming {
        snapshot_every_entries: 50,
        keep_entries_after_snapshot: 10,
        ..RaftTiming::default()
    }
}

async fn start(id: u64, addr: &NodeAddr, dir: &Path) -> Consensus<Counters> {
    let config = ConsensusConfig {
        extra_routes: None,
        node_id: id,
        addr: addr.clone(),
        data_dir: dir.join(format!("node-{id}")),
        timing: timing(),
    };
    Consensus::start(config, Arc::new(SystemClock), &prometheus::Registry::new())
        .await
        .expect("node starts")
}

fn add(key: &str, amount: u64) -> CounterCommand {
    CounterCommand::Add {
        key: key.to_string(),
        amount,
    }
}

async fn wait_for_leader(nodes: &[&Consensus<Counters>]) -> u64 {
    for _ in 0..200 {
        for node in nodes {
            let status = node.status().await;
            if let Some(leader) = status.leader {
                if nodes.iter().any(|n| n.node_id() == leader) {
                    return leader;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no leader among the running nodes within 10 s");
}

struct Cluster {
    _dir: tempfile::TempDir,
    path: PathBuf,
    addrs: BTreeMap<u64, NodeAddr>,
    nodes: BTreeMap<u64, Consensus<Counters>>,
}

async fn three_nodes() -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let mut addrs = BTreeMap::new();
    for id in 1..=3 {
        addrs.insert(
            id,
            NodeAddr {
                raft_addr: free_addr(),
                admin_addr: free_addr(),
            },
        );
    }
    let mut nodes = BTreeMap::new();
    for (id, addr) in &addrs {
        nodes.insert(*id, start(*id, addr, &path).await);
    }
    nodes[&1]
        .initialize(addrs.clone())
        .await
        .expect("initialise");
    let all: Vec<&Consensus<Counters>> = nodes.values().collect();
    wait_for_leader(&all).await;
    Cluster {
        _dir: dir,
        path,
        addrs,
        nodes,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_any_node_are_applied_once_and_read_linearizably_everywhere() {
    let cluster = three_nodes().await;
    // Every node accepts writes; followers forward them to the leader.
    for (i, node) in cluster.nodes.values().enumerate() {
        let id = CommandId(format!("w{i}"));
        node.write(id, &add("calls", 1)).await.expect("write");
    }
    // A retried command (same id) gets the first answer and no second effect.
    let first = cluster.nodes[&2]
        .write(CommandId("once".into()), &add("calls", 10))
        .await
        .expect("write");
    let again = cluster.nodes[&3]
        .write(CommandId("once".into()), &add("calls", 10))
        .await
        .expect("retry");
    assert_eq!(first, 13);
    assert_eq!(again, 13, "a retry gets the first answer");
    for node in cluster.nodes.values() {
        let value = node
            .read(|s| s.values.get("calls").copied())
            .await
            .expect("linearizable read");
        assert_eq!(
            value,
            Some(13),
            "node {} reads every acknowledged write",
            node.node_id()
        );
    }
    let status = cluster.nodes[&1].status().await;
    assert_eq!(status.members.len(), 3);
    assert!(status.members.iter().all(|m| m.healthy), "{status:?}");
    for node in cluster.nodes.values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_survives_its_leader_and_a_lagging_node_catches_up_by_snapshot() {
    let mut cluster = three_nodes().await;
    let all: Vec<&Consensus<Counters>> = cluster.nodes.values().collect();
    let leader = wait_for_leader(&all).await;
    cluster.nodes[&leader]
        .write(CommandId("before".into()), &add("k", 1))
        .await
        .expect("write");
    // The leader goes away; the other two elect a new one and keep writing.
    let old = cluster.nodes.remove(&leader).expect("leader node");
    old.shutdown().await;
    drop(old);
    let survivors: Vec<&Consensus<Counters>> = cluster.nodes.values().collect();
    let new_leader = wait_for_leader(&survivors).await;
    assert_ne!(new_leader, leader);
    for i in 0..200u64 {
        let node = survivors[(i % 2) as usize];
        node.write(CommandId(format!("after-{i}")), &add("k", 1))
            .await
            .expect("write while a node is down");
    }
    // Far behind (the log was compacted past it), it catches up by snapshot.
    let restarted = start(leader, &cluster.addrs[&leader], &cluster.path).await;
    let mut caught_up = false;
    for _ in 0..200 {
        if restarted.read_local(|s| s.values.get("k").copied()) == Some(201) {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(caught_up, "the restarted node catches up");
    let status = restarted.status().await;
    assert!(
        status.snapshots_installed >= 1,
        "caught up by snapshot: {status:?}"
    );
    restarted.shutdown().await;
    for node in cluster.nodes.values() {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_can_be_added_and_removed_and_a_node_restarts_with_its_state() {
    let mut cluster = three_nodes().await;
    cluster.nodes[&1]
        .write(CommandId("a".into()), &add("k", 5))
        .await
        .expect("write");
    // Add node 4 as a learner, promote it, remove node 3.
    let addr4 = NodeAddr {
        raft_addr: free_addr(),
        admin_addr: free_addr(),
    };
    let node4 = start(4, &addr4, &cluster.path).await;
    cluster.nodes[&2]
        .add_learner(4, addr4.clone())
        .await
        .expect("add learner");
    cluster.nodes[&2]
        .change_voters(BTreeSet::from([1, 2, 4]))
        .await
        .expect("promote");
    cluster.nodes[&1]
        .remove_nodes(BTreeSet::from([3]))
        .await
        .expect("remove");
    let status = node4.status().await;
    let ids: Vec<u64> = status.members.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![1, 2, 4]);
    node4
        .write(CommandId("b".into()), &add("k", 1))
        .await
        .expect("write through the new member");
    assert_eq!(
        node4
            .read(|s| s.values.get("k").copied())
            .await
            .expect("read"),
        Some(6)
    );
    // Node 1 restarts from its data directory and keeps everything.
    let one = cluster.nodes.remove(&1).expect("node 1");
    one.shutdown().await;
    drop(one);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let one = start(1, &cluster.addrs[&1], &cluster.path).await;
    let value = one
        .read(|s| s.values.get("k").copied())
        .await
        .expect("read after restart");
    assert_eq!(value, Some(6));
    for node in [&one, &node4, &cluster.nodes[&2], &cluster.nodes[&3]] {
        node.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_batched_yet_each_applied_once_with_its_own_answer() {
    let cluster = three_nodes().await;
    let nodes: Vec<Consensus<Counters>> = cluster.nodes.values().cloned().collect();
    // 300 concurrent writes through every node, and each of the first 50
    // command ids sent a second time, concurrently, through another node:
    // group commit puts many of them in one Raft entry, but every command id
    // takes effect once and both copies of a duplicate get the same answer.
    let mut tasks = Vec::new();
    for i in 0..300u64 {
        let copies = if i < 50 { 2 } else { 1 };
        for copy in 0..copies {
            let node = nodes[((i + copy) % 3) as usize].clone();
            tasks.push(tokio::spawn(async move {
                let answer = node
                    .write(CommandId(format!("c{i}")), &add("total", 1))
                    .await
                    .expect("write");
                (i, answer)
            }));
        }
    }
    let mut answers: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for task in tasks {
        let (i, answer) = task.await.expect("task");
        answers.entry(i).or_default().push(answer);
    }
    let mut seen = BTreeSet::new();
    for (i, copies) in &answers {
        assert!(
            copies.iter().all(|a| *a == copies[0]),
            "both copies of command {i} get the first answer: {copies:?}"
        );
        assert!(
            seen.insert(copies[0]),
            "command {i} has an answer no other command had"
        );
    }
    // Each id counted once: the answers are exactly 1..=300.
    assert_eq!(seen, (1..=300).collect::<BTreeSet<u64>>());
    for node in &nodes {
        let value = node
            .read(|s| (s.values.get("total").copied(), s.applied))
            .await
            .expect("linearizable read");
        assert_eq!(value, (Some(300), 300), "node {}", node.node_id());
    }
    // Fewer Raft entries than commands: the writes were batched.
    let status = nodes[0].status().await;
    assert!(
        status.last_log_index < 300,
        "300 concurrent commands took {} log entries",
        status.last_log_index
    );
    for node in &nodes {
        node.shutdown().await;
    }
}
