//! The group coordinator: consumer groups of the classic protocol
//! ([`classic`]) and of the consumer protocol of KIP-848 ([`consumer`],
//! with the server-side assignors of [`assignor`]), and their committed
//! offsets ([`offsets`]).
//!
//! Membership lives in memory, and a classic group's membership is also
//! stored in the catalog whenever it settles (stable or empty), so after a
//! broker restart its members carry on in their generation instead of
//! rejoining a new group one by one; groups and committed offsets live in
//! the catalog. Consumer-protocol groups are rebuilt by their members'
//! rejoining. This broker coordinates every group: with one
//! broker per catalog it is the coordinator of every key.

pub mod assignor;
pub mod classic;
pub mod consumer;
pub mod describe;
pub mod offsets;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sluice_protocol::ErrorCode;
use sluice_storage::Storage;

pub use assignor::TopicPartition;
use classic::{
    ClassicGroup, ClassicTimeouts, JoinRequest, JoinResult, Pending, SyncRequest, SyncResult,
};
use consumer::{ConsumerGroup, ConsumerTimeouts, Heartbeat, HeartbeatResult};

/// Coordinator settings, with Kafka's broker defaults.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub classic: ClassicTimeouts,
    pub consumer: ConsumerTimeouts,
    /// How often sessions and deadlines are checked.
    pub tick: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            classic: ClassicTimeouts {
                initial_rebalance_delay: Duration::from_millis(3000),
                min_session: Duration::from_millis(6000),
                max_session: Duration::from_millis(1_800_000),
            },
            consumer: ConsumerTimeouts {
                session: Duration::from_millis(45_000),
                heartbeat_interval: Duration::from_millis(5000),
            },
            tick: Duration::from_millis(100),
        }
    }
}

/// A group of either protocol. An empty group may change protocol.
#[derive(Debug)]
pub enum Group {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

impl Group {
    fn has_members(&self) -> bool {
        match self {
            Group::Classic(g) => !g.is_empty(),
            Group::Consumer(g) => !g.members.is_empty(),
        }
    }

    /// The state name ListGroups reports.
    pub fn state(&self) -> &'static str {
        match self {
            Group::Classic(g) => g.state.name(),
            Group::Consumer(g) => g.state(),
        }
    }

    /// The group type ListGroups v5 reports.
    pub fn group_type(&self) -> &'static str {
        match self {
            Group::Classic(_) => "classic",
            Group::Consumer(_) => "consumer",
        }
    }

    pub fn protocol_type(&self) -> String {
        match self {
            Group::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            Group::Consumer(_) => "consumer".into(),
        }
    }
}

/// One group in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: String,
    pub group_type: String,
}

/// The group coordinator service.
pub struct GroupCoordinator {
    storage: Arc<Storage>,
    config: GroupConfig,
    /// Groups with members or state in memory; each behind its own lock so
    /// one busy group does not stall the others.
    groups: Mutex<HashMap<String, Arc<Mutex<Group>>>>,
    /// Classic group snapshots on their way to the catalog, written in
    /// order by one task so a newer snapshot is never overwritten.
    snapshots: tokio::sync::mpsc::UnboundedSender<(String, String)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl GroupCoordinator {
    /// Creates the coordinator and starts its session timer.
    pub fn start(storage: Arc<Storage>, config: GroupConfig) -> Arc<Self> {
        let (snapshots, mut pending) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
        let writer = storage.clone();
        tokio::spawn(async move {
            while let Some((group, state)) = pending.recv().await {
                let saved = writer
                    .catalog()
                    .save_group_state(&group, &state, sluice_storage::now_ms())
                    .await;
                if let Err(e) = saved {
                    tracing::warn!(group, error = %e, "could not store group membership");
                }
            }
        });
        let coordinator = Arc::new(GroupCoordinator {
            storage,
            config,
            groups: Mutex::new(HashMap::new()),
            snapshots,
        });
        let weak = Arc::downgrade(&coordinator);
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(config.tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let Some(c) = weak.upgrade() else { break };
                c.tick(Instant::now());
            }
        });
        coordinator
    }

    pub fn config(&self) -> &GroupConfig {
        &self.config
    }

    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// Restores the classic groups stored in the catalog; run before the
    /// listener accepts connections.
    pub async fn recover(&self) -> Result<usize, sluice_storage::StorageError> {
        let now = Instant::now();
        let mut restored = 0;
        for (id, state) in self.storage.catalog().group_states().await? {
            let snap: classic::ClassicSnapshot = match serde_json::from_str(&state) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(group = %id, error = %e, "ignoring unreadable group snapshot");
                    continue;
                }
            };
            if snap.members.is_empty() {
                continue;
            }
            let group = ClassicGroup::restore(id.clone(), snap, self.config.classic, now);
            lock(&self.groups).insert(id, Arc::new(Mutex::new(Group::Classic(group))));
            restored += 1;
        }
        Ok(restored)
    }

    /// Hands a classic group's snapshot to the catalog writer if the group
    /// changed and is at rest.
    fn store_if_changed(&self, group_id: &str, g: &mut Group) {
        let Group::Classic(c) = g else { return };
        if c.revision == c.persisted_revision {
            return;
        }
        let Some(snap) = c.snapshot() else { return };
        match serde_json::to_string(&snap) {
            Ok(json) => {
                c.persisted_revision = c.revision;
                let _ = self.snapshots.send((group_id.to_string(), json));
            }
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "could not encode group snapshot")
            }
        }
    }

    fn tick(&self, now: Instant) {
        let groups: Vec<(String, Arc<Mutex<Group>>)> = lock(&self.groups)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut idle = Vec::new();
        for (id, g) in groups {
            let mut g = lock(&g);
            match &mut *g {
                Group::Classic(c) => c.tick(now),
                Group::Consumer(c) => c.tick(now),
            }
            self.store_if_changed(&id, &mut g);
            if !g.has_members() {
                idle.push(id);
            }
        }
        // Empty groups leave memory; their offsets stay in the catalog.
        let mut map = lock(&self.groups);
        for id in idle {
            let still_idle = map.get(&id).is_some_and(|g| !lock(g).has_members());
            if still_idle {
                map.remove(&id);
            }
        }
    }

    /// The group if it is in memory.
    pub fn group(&self, group_id: &str) -> Option<Arc<Mutex<Group>>> {
        lock(&self.groups).get(group_id).cloned()
    }

    /// The group of this protocol (classic or consumer), created when
    /// absent; an existing group without members switches protocol. Err if
    /// it has members of the other protocol. Runs under the map lock, and
    /// callers lock the group before releasing it, so the idle sweep in
    /// `tick` cannot drop a group between its lookup and its first member.
    fn entry(
        &self,
        map: &mut HashMap<String, Arc<Mutex<Group>>>,
        group_id: &str,
        classic: bool,
    ) -> Result<Arc<Mutex<Group>>, ErrorCode> {
        let fresh = || {
            if classic {
                Group::Classic(ClassicGroup::new(group_id.to_string(), self.config.classic))
            } else {
                Group::Consumer(ConsumerGroup::new(
                    group_id.to_string(),
                    self.config.consumer,
                ))
            }
        };
        let g = map
            .entry(group_id.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(fresh())))
            .clone();
        let mut guard = lock(&g);
        let occupied = match &*guard {
            Group::Consumer(c) if classic => Some(!c.members.is_empty()),
            Group::Classic(c) if !classic => Some(!c.is_empty()),
            _ => None,
        };
        match occupied {
            Some(true) if classic => return Err(ErrorCode::InconsistentGroupProtocol),
            Some(true) => return Err(ErrorCode::GroupIdNotFound),
            Some(false) => *guard = fresh(),
            None => {}
        }
        drop(guard);
        Ok(g)
    }

    pub fn join(&self, group_id: &str, req: JoinRequest) -> Pending<JoinResult> {
        let member_id = req.member_id.clone();
        let mut map = lock(&self.groups);
        let group = match self.entry(&mut map, group_id, true) {
            Ok(g) => g,
            Err(code) => {
                return Pending::Now(JoinResult {
                    error: Some(code),
                    error_message: Some(format!(
                        "group `{group_id}` is a consumer-protocol group with members; use group.protocol=consumer or another group id"
                    )),
                    generation: -1,
                    member_id,
                    ..Default::default()
                })
            }
        };
        let mut g = lock(&group);
        drop(map);
        let pending = match &mut *g {
            Group::Classic(c) => c.join(req, Instant::now()),
            Group::Consumer(_) => unreachable_join(member_id),
        };
        self.store_if_changed(group_id, &mut g);
        pending
    }

    pub fn sync(&self, group_id: &str, req: SyncRequest) -> Pending<SyncResult> {
        let unknown = || {
            Pending::Now(SyncResult {
                error: Some(ErrorCode::UnknownMemberId),
                ..Default::default()
            })
        };
        let Some(g) = self.group(group_id) else {
            return unknown();
        };
        let mut g = lock(&g);
        let pending = match &mut *g {
            Group::Classic(c) => c.sync(req, Instant::now()),
            Group::Consumer(_) => unknown(),
        };
        self.store_if_changed(group_id, &mut g);
        pending
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Option<ErrorCode> {
        // A group this broker does not know has no members (Kafka answers
        // UNKNOWN_MEMBER_ID, which sends the client back to JoinGroup).
        let Some(g) = self.group(group_id) else {
            return Some(ErrorCode::UnknownMemberId);
        };
        let mut g = lock(&g);
        match &mut *g {
            Group::Classic(c) => c.heartbeat(member_id, instance_id, generation, Instant::now()),
            Group::Consumer(_) => Some(ErrorCode::UnknownMemberId),
        }
    }

    /// LeaveGroup for one member.
    pub fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Option<ErrorCode> {
        let Some(g) = self.group(group_id) else {
            return Some(ErrorCode::UnknownMemberId);
        };
        let mut g = lock(&g);
        let error = match &mut *g {
            Group::Classic(c) => c.leave(member_id, instance_id, Instant::now()),
            Group::Consumer(_) => Some(ErrorCode::UnknownMemberId),
        };
        self.store_if_changed(group_id, &mut g);
        error
    }

    /// ConsumerGroupHeartbeat. Topic ids are resolved by the caller.
    pub fn consumer_heartbeat(&self, group_id: &str, hb: Heartbeat) -> HeartbeatResult {
        let member_id = hb.member_id.clone();
        let topics = self.topic_partition_counts();
        let mut map = lock(&self.groups);
        let group = match self.entry(&mut map, group_id, false) {
            Ok(g) => g,
            Err(code) => {
                return HeartbeatResult {
                    error: Some((
                        code,
                        format!("group `{group_id}` is a classic group with members; it cannot be joined with group.protocol=consumer"),
                    )),
                    member_id,
                    member_epoch: -1,
                    assignment: None,
                }
            }
        };
        let mut g = lock(&group);
        drop(map);
        match &mut *g {
            Group::Consumer(c) => c.heartbeat(hb, &topics, Instant::now()),
            Group::Classic(_) => HeartbeatResult {
                error: Some((ErrorCode::GroupIdNotFound, "group changed protocol".into())),
                member_id,
                member_epoch: -1,
                assignment: None,
            },
        }
    }

    /// Every topic's partition count, by name.
    pub fn topic_partition_counts(&self) -> BTreeMap<String, i32> {
        self.storage
            .topics()
            .iter()
            .map(|t| (t.name.clone(), t.partition_count()))
            .collect()
    }

    /// Groups in memory and in the catalog, by id.
    pub async fn list(&self) -> Result<Vec<GroupListing>, sluice_storage::StorageError> {
        let mut out: BTreeMap<String, GroupListing> = BTreeMap::new();
        // Groups known only to the catalog have offsets but no members;
        // Kafka lists them as empty classic groups.
        for row in self.storage.catalog().list_groups().await? {
            out.insert(
                row.group_id.clone(),
                GroupListing {
                    group_id: row.group_id,
                    protocol_type: row.protocol_type,
                    state: "Empty".into(),
                    group_type: "classic".into(),
                },
            );
        }
        let live: Vec<(String, Arc<Mutex<Group>>)> = lock(&self.groups)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (id, g) in live {
            let g = lock(&g);
            if !g.has_members() && !out.contains_key(&id) {
                continue;
            }
            out.insert(
                id.clone(),
                GroupListing {
                    group_id: id,
                    protocol_type: g.protocol_type(),
                    state: g.state().into(),
                    group_type: g.group_type().into(),
                },
            );
        }
        Ok(out.into_values().collect())
    }

    /// Deletes a group that has no members, with its offsets.
    pub async fn delete(&self, group_id: &str) -> Option<ErrorCode> {
        {
            // Checked and removed under the map lock, so no member can
            // join between the check and the removal.
            let mut map = lock(&self.groups);
            let busy = map.get(group_id).is_some_and(|g| lock(g).has_members());
            if busy {
                return Some(ErrorCode::NonEmptyGroup);
            }
            map.remove(group_id);
        }
        match self.storage.catalog().delete_group(group_id).await {
            Ok(true) => None,
            Ok(false) => Some(ErrorCode::GroupIdNotFound),
            Err(e) => {
                tracing::warn!(group = group_id, error = %e, "could not delete group");
                Some(ErrorCode::CoordinatorNotAvailable)
            }
        }
    }

    /// The topics the members of a group are subscribed to (for OffsetDelete,
    /// which must not remove offsets a member is consuming from).
    pub fn subscribed_topics(&self, group_id: &str) -> BTreeSet<String> {
        let Some(g) = self.group(group_id) else {
            return BTreeSet::new();
        };
        let g = lock(&g);
        match &*g {
            Group::Consumer(c) => c
                .target
                .values()
                .flatten()
                .map(|(t, _)| t.clone())
                .chain(
                    c.members
                        .values()
                        .flat_map(|m| m.subscribed_names.iter().cloned()),
                )
                .collect(),
            Group::Classic(c) => c
                .members
                .values()
                .flat_map(|m| {
                    let meta = m.metadata_for(c.protocol_name.as_deref().unwrap_or_default());
                    offsets::subscription_topics(&meta)
                })
                .collect(),
        }
    }
}

fn unreachable_join(member_id: String) -> Pending<JoinResult> {
    Pending::Now(JoinResult {
        error: Some(ErrorCode::InconsistentGroupProtocol),
        error_message: Some("group changed protocol while joining; retry".into()),
        generation: -1,
        member_id,
        ..Default::default()
    })
}
