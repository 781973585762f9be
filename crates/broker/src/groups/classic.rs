//! A group of the classic protocol (JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup): its state machine, members and generations, as Kafka's
//! group coordinator runs them.
//!
//! The state machine is synchronous and runs under the group's lock; a join
//! or sync that must wait for the rest of the group gets a channel that the
//! group completes when the rebalance moves on.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_protocol::ErrorCode;
use tokio::sync::oneshot;

/// Where a classic group is in its rebalance cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassicState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl ClassicState {
    /// The name Kafka reports in ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            ClassicState::Empty => "Empty",
            ClassicState::PreparingRebalance => "PreparingRebalance",
            ClassicState::CompletingRebalance => "CompletingRebalance",
            ClassicState::Stable => "Stable",
        }
    }
}

/// Timing rules shared by every classic group.
#[derive(Debug, Clone, Copy)]
pub struct ClassicTimeouts {
    /// Kafka's `group.initial.rebalance.delay.ms`: the first rebalance of an
    /// empty group waits this long for more members, so a group starting
    /// together does not rebalance once per member.
    pub initial_rebalance_delay: Duration,
    /// Kafka's `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
    pub min_session: Duration,
    pub max_session: Duration,
}

/// What a JoinGroup asks for.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (name, metadata) in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED
    /// with its id, so that a retried join cannot create a second member.
    pub require_known_member_id: bool,
}

/// What a JoinGroup answers.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: Option<ErrorCode>,
    pub error_message: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// Filled for the leader only: (member id, instance id, metadata).
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader that rejoined without a change keeps the current
    /// assignment (JoinGroup v9+).
    pub skip_assignment: bool,
}

impl JoinResult {
    fn error(code: ErrorCode, member_id: &str, message: impl Into<String>) -> Self {
        JoinResult {
            error: Some(code),
            error_message: Some(message.into()),
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// What a SyncGroup asks for.
#[derive(Debug, Clone, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    /// Checked against the group's when given (v5+).
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    /// The leader's assignment: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

/// What a SyncGroup answers.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: Option<ErrorCode>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(code: ErrorCode) -> Self {
        SyncResult {
            error: Some(code),
            ..Default::default()
        }
    }
}

/// An answer now, or one the group sends when the rebalance moves on.
pub enum Pending<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// A member of a classic group.
#[derive(Debug)]
pub struct ClassicMember {
    pub id: String,
    /// Static membership (`group.instance.id`): the member keeps its
    /// assignment across restarts without a rebalance.
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// What the leader assigned to it in the current generation.
    pub assignment: Bytes,
    /// Its JoinGroup, parked until the rebalance completes.
    awaiting_join: Option<oneshot::Sender<JoinResult>>,
    /// Its SyncGroup, parked until the leader's assignment arrives.
    awaiting_sync: Option<oneshot::Sender<SyncResult>>,
    /// Whether it sent SyncGroup in this generation; members that never do
    /// are removed when the sync deadline passes.
    synced: bool,
    /// Session expiry counts from here.
    last_heartbeat: Instant,
}

impl ClassicMember {
    /// Answers its parked JoinGroup and SyncGroup, if any, with an error:
    /// it was removed or replaced while they waited.
    fn fail_pending(&mut self, join: ErrorCode, sync: ErrorCode, why: &str) {
        if let Some(tx) = self.awaiting_join.take() {
            let _ = tx.send(JoinResult::error(join, &self.id, why));
        }
        if let Some(tx) = self.awaiting_sync.take() {
            let _ = tx.send(SyncResult::error(sync));
        }
    }

    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
}

/// A classic consumer group.
#[derive(Debug)]
pub struct ClassicGroup {
    pub id: String,
    pub state: ClassicState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// By member id; iteration order is the order of the member ids.
    pub members: BTreeMap<String, ClassicMember>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, until which time they
    /// may join with them.
    pending: HashMap<String, Instant>,
    /// Instance id → member id of the static members.
    static_members: HashMap<String, String>,
    /// PreparingRebalance ends here even if some members have not rejoined.
    rebalance_deadline: Option<Instant>,
    /// An empty group's first rebalance does not complete before this.
    initial_delay_until: Option<Instant>,
    /// CompletingRebalance: members that have not synced by then are removed.
    sync_deadline: Option<Instant>,
    timeouts: ClassicTimeouts,
    /// Advances on every change of membership, generation or assignment,
    /// so the coordinator knows when to store a new snapshot.
    pub revision: u64,
    /// The revision last handed to the catalog.
    pub persisted_revision: u64,
}

impl ClassicGroup {
    pub fn new(id: String, timeouts: ClassicTimeouts) -> Self {
        ClassicGroup {
            id,
            state: ClassicState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            initial_delay_until: None,
            sync_deadline: None,
            timeouts,
            revision: 0,
            persisted_revision: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.pending.is_empty()
    }

    pub fn join(&mut self, req: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let t = self.timeouts;
        if req.session_timeout < t.min_session || req.session_timeout > t.max_session {
            return Pending::Now(JoinResult::error(
                ErrorCode::InvalidSessionTimeout,
                &req.member_id,
                format!(
                    "session.timeout.ms {} is outside the broker's range [{}, {}]",
                    req.session_timeout.as_millis(),
                    t.min_session.as_millis(),
                    t.max_session.as_millis()
                ),
            ));
        }
        if !self.supports(&req.protocol_type, &req.protocols) {
            return Pending::Now(JoinResult::error(
                ErrorCode::InconsistentGroupProtocol,
                &req.member_id,
                format!(
                    "group `{}` uses protocol type `{}` with assignors none of which this member offers",
                    self.id,
                    self.protocol_type.as_deref().unwrap_or("")
                ),
            ));
        }
        if req.member_id.is_empty() {
            self.join_unknown(req, now)
        } else {
            self.join_known(req, now)
        }
    }

    /// A join without a member id: a new member, or a static member coming
    /// back under a new id.
    fn join_unknown(&mut self, req: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let new_id = format!("{}-{}", member_prefix(&req), uuid::Uuid::new_v4());
        if let Some(instance) = &req.instance_id {
            if let Some(old_id) = self.static_members.get(instance).cloned() {
                return self.replace_static_member(&old_id, new_id, req, now);
            }
        } else if req.require_known_member_id {
            self.pending
                .insert(new_id.clone(), now + req.session_timeout);
            return Pending::Now(JoinResult::error(
                ErrorCode::MemberIdRequired,
                &new_id,
                "rejoin with the member id given in this response",
            ));
        }
        self.add_member_and_wait(new_id, req, now)
    }

    fn join_known(&mut self, req: JoinRequest, now: Instant) -> Pending<JoinResult> {
        let id = req.member_id.clone();
        if self.pending.remove(&id).is_some() {
            return self.add_member_and_wait(id, req, now);
        }
        if let Err(code) = self.check_member(&id, req.instance_id.as_deref()) {
            return Pending::Now(JoinResult::error(
                code,
                &id,
                member_error_text(code, &self.id),
            ));
        }
        let Some(member) = self.members.get_mut(&id) else {
            return Pending::Now(JoinResult::error(
                ErrorCode::UnknownMemberId,
                &id,
                member_error_text(ErrorCode::UnknownMemberId, &self.id),
            ));
        };
        let unchanged = member.protocols == req.protocols;
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heartbeat = now;
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            ClassicState::CompletingRebalance | ClassicState::Stable
                if unchanged && !(self.state == ClassicState::Stable && is_leader) =>
            {
                // A follower that lost its join response (or rejoins with
                // the same metadata) gets the current generation back.
                Pending::Now(self.current_generation_for(&id, false))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(&id) {
                    m.protocols = req.protocols;
                    if let Some(old) = m.awaiting_join.replace(tx) {
                        let _ = old.send(JoinResult::error(
                            ErrorCode::UnknownMemberId,
                            &id,
                            "a newer JoinGroup of this member replaced this one",
                        ));
                    }
                }
                self.prepare_rebalance(now);
                self.try_complete_join(now);
                Pending::Wait(rx)
            }
        }
    }

    fn add_member_and_wait(
        &mut self,
        id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        self.members.insert(
            id.clone(),
            ClassicMember {
                id,
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                awaiting_join: Some(tx),
                awaiting_sync: None,
                synced: false,
                last_heartbeat: now,
            },
        );
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    /// A static member rejoined without its member id (it restarted): the
    /// new id replaces the old one, which is fenced from now on. If nothing
    /// changed in a stable group it keeps its assignment without a rebalance.
    fn replace_static_member(
        &mut self,
        old_id: &str,
        new_id: String,
        req: JoinRequest,
        now: Instant,
    ) -> Pending<JoinResult> {
        let Some(mut member) = self.members.remove(old_id) else {
            return self.add_member_and_wait(new_id, req, now);
        };
        member.fail_pending(
            ErrorCode::FencedInstanceId,
            ErrorCode::FencedInstanceId,
            "a newer member with the same group.instance.id joined",
        );
        let unchanged = member.protocols == req.protocols;
        member.id = new_id.clone();
        member.client_id = req.client_id.clone();
        member.client_host = req.client_host.clone();
        member.session_timeout = req.session_timeout;
        member.rebalance_timeout = req.rebalance_timeout;
        member.last_heartbeat = now;
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), new_id.clone());
        }
        if self.leader.as_deref() == Some(old_id) {
            self.leader = Some(new_id.clone());
        }
        self.members.insert(new_id.clone(), member);
        self.revision += 1;
        if self.state == ClassicState::Stable && unchanged {
            let is_leader = self.leader.as_deref() == Some(new_id.as_str());
            return Pending::Now(self.current_generation_for(&new_id, is_leader));
        }
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&new_id) {
            m.protocols = req.protocols;
            m.awaiting_join = Some(tx);
        }
        self.prepare_rebalance(now);
        self.try_complete_join(now);
        Pending::Wait(rx)
    }

    pub fn sync(&mut self, req: SyncRequest, now: Instant) -> Pending<SyncResult> {
        let member_id = req.member_id.as_str();
        if let Err(code) = self.check_member(member_id, req.instance_id.as_deref()) {
            return Pending::Now(SyncResult::error(code));
        }
        if req.generation != self.generation {
            return Pending::Now(SyncResult::error(ErrorCode::IllegalGeneration));
        }
        if req
            .protocol_type
            .is_some_and(|t| Some(t.as_str()) != self.protocol_type.as_deref())
            || req
                .protocol_name
                .is_some_and(|n| Some(n.as_str()) != self.protocol_name.as_deref())
        {
            return Pending::Now(SyncResult::error(ErrorCode::InconsistentGroupProtocol));
        }
        let assignments = req.assignments;
        match self.state {
            ClassicState::Empty => Pending::Now(SyncResult::error(ErrorCode::UnknownMemberId)),
            ClassicState::PreparingRebalance => {
                Pending::Now(SyncResult::error(ErrorCode::RebalanceInProgress))
            }
            ClassicState::Stable => {
                let member = &self.members[member_id];
                Pending::Now(self.sync_result(member.assignment.clone()))
            }
            ClassicState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    m.awaiting_sync = Some(tx);
                    m.synced = true;
                    m.last_heartbeat = now;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = given.remove(&m.id).unwrap_or_default();
                    }
                    self.state = ClassicState::Stable;
                    self.sync_deadline = None;
                    self.revision += 1;
                    let results: Vec<_> = self
                        .members
                        .values()
                        .map(|m| self.sync_result(m.assignment.clone()))
                        .collect();
                    for (m, result) in self.members.values_mut().zip(results) {
                        if let Some(tx) = m.awaiting_sync.take() {
                            let _ = tx.send(result);
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ErrorCode> {
        if let Err(code) = self.check_member(member_id, instance_id) {
            return Some(code);
        }
        if generation != self.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        match self.state {
            ClassicState::Empty => Some(ErrorCode::UnknownMemberId),
            ClassicState::PreparingRebalance => Some(ErrorCode::RebalanceInProgress),
            ClassicState::CompletingRebalance | ClassicState::Stable => None,
        }
    }

    /// LeaveGroup for one member (v3+ batches them). A static member leaves
    /// by its instance id; the member id, if given, must match.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Option<ErrorCode> {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Some(ErrorCode::UnknownMemberId),
                Some(known) if !member_id.is_empty() && known != member_id => {
                    return Some(ErrorCode::FencedInstanceId)
                }
                Some(known) => known.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            return None;
        }
        if !self.members.contains_key(&id) {
            return Some(ErrorCode::UnknownMemberId);
        }
        self.remove_member(&id, now);
        None
    }

    /// Whether an offset commit by this member and generation is accepted,
    /// by Kafka's rules: a commit without a member and generation is an
    /// admin commit, allowed only while the group has no members.
    pub fn check_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Option<ErrorCode> {
        if generation < 0 && member_id.is_empty() && self.members.is_empty() {
            return None;
        }
        if self.state == ClassicState::CompletingRebalance {
            return Some(ErrorCode::RebalanceInProgress);
        }
        if let Err(code) = self.check_member(member_id, instance_id) {
            return Some(code);
        }
        if generation != self.generation {
            return Some(ErrorCode::IllegalGeneration);
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        None
    }

    /// Expires sessions, pending member ids, and rebalance and sync deadlines.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                // A member parked in JoinGroup is waiting on us, not idle.
                m.awaiting_join.is_none() && now > m.last_heartbeat + m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "session expired; removing member");
            self.remove_member(&id, now);
        }
        match self.state {
            ClassicState::PreparingRebalance => {
                if self.rebalance_deadline.is_some_and(|d| now >= d) {
                    self.complete_join(now);
                } else {
                    self.try_complete_join(now);
                }
            }
            ClassicState::CompletingRebalance if self.sync_deadline.is_some_and(|d| now >= d) => {
                let unsynced: Vec<String> = self
                    .members
                    .values()
                    .filter(|m| !m.synced)
                    .map(|m| m.id.clone())
                    .collect();
                for id in unsynced {
                    tracing::info!(group = %self.id, member = %id, "no SyncGroup before the deadline; removing member");
                    self.remove_member(&id, now);
                }
                self.sync_deadline = None;
            }
            _ => {}
        }
    }

    /// Checks that `member_id` is a member and, for a static member, that
    /// its instance id is still held by that member id.
    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), ErrorCode> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(known) if known != member_id => return Err(ErrorCode::FencedInstanceId),
                None if !self.members.contains_key(member_id) => {
                    return Err(ErrorCode::UnknownMemberId)
                }
                _ => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ErrorCode::UnknownMemberId);
        }
        Ok(())
    }

    fn remove_member(&mut self, id: &str, now: Instant) {
        let Some(mut m) = self.members.remove(id) else {
            return;
        };
        self.revision += 1;
        if let Some(instance) = &m.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        m.fail_pending(
            ErrorCode::UnknownMemberId,
            ErrorCode::UnknownMemberId,
            "the member was removed from the group",
        );
        match self.state {
            ClassicState::Stable | ClassicState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.try_complete_join(now);
            }
            ClassicState::PreparingRebalance => self.try_complete_join(now),
            ClassicState::Empty => {}
        }
    }

    /// Starts a rebalance: every member must rejoin within the longest
    /// rebalance timeout. Syncs waiting on the old generation are told.
    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == ClassicState::PreparingRebalance {
            return;
        }
        if self.state == ClassicState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(SyncResult::error(ErrorCode::RebalanceInProgress));
                }
            }
        }
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.initial_delay_until = (self.state == ClassicState::Empty
            && !self.timeouts.initial_rebalance_delay.is_zero())
        .then(|| now + self.timeouts.initial_rebalance_delay.min(longest));
        self.rebalance_deadline = Some(now + longest);
        self.sync_deadline = None;
        self.state = ClassicState::PreparingRebalance;
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state != ClassicState::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|d| now < d) {
            return;
        }
        let all_joined = self.members.values().all(|m| m.awaiting_join.is_some());
        if all_joined && self.pending.is_empty() {
            self.complete_join(now);
        }
    }

    /// Ends PreparingRebalance: members that did not rejoin are removed,
    /// the generation advances, and every parked join is answered (the
    /// leader with the members' metadata).
    fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.awaiting_join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "did not rejoin in time; removing member");
            if let Some(mut m) = self.members.remove(&id) {
                if let Some(instance) = &m.instance_id {
                    self.static_members.remove(instance);
                }
                m.fail_pending(
                    ErrorCode::UnknownMemberId,
                    ErrorCode::RebalanceInProgress,
                    "the member did not rejoin in time",
                );
            }
        }
        self.generation += 1;
        self.revision += 1;
        self.rebalance_deadline = None;
        self.initial_delay_until = None;
        if self.members.is_empty() {
            self.state = ClassicState::Empty;
            self.protocol_name = None;
            self.leader = None;
            return;
        }
        self.protocol_name = self.select_protocol();
        if !self
            .leader
            .as_ref()
            .is_some_and(|l| self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = ClassicState::CompletingRebalance;
        let longest = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.sync_deadline = Some(now + longest);
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let result = self.current_generation_for(&id, false);
            if let Some(m) = self.members.get_mut(&id) {
                m.synced = false;
                m.last_heartbeat = now;
                if let Some(tx) = m.awaiting_join.take() {
                    let _ = tx.send(result);
                }
            }
        }
    }

    /// The JoinGroup answer of the current generation for one member.
    fn current_generation_for(&self, member_id: &str, skip_assignment: bool) -> JoinResult {
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.members
                .values()
                .map(|m| {
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.metadata_for(&protocol),
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResult {
            error: None,
            error_message: None,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment,
        }
    }

    fn sync_result(&self, assignment: Bytes) -> SyncResult {
        SyncResult {
            error: None,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            assignment,
        }
    }

    /// Whether a member with these protocols can join: same protocol type,
    /// and at least one assignor every member offers.
    fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        if self.members.is_empty() {
            return true;
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.values().all(|m| m.metadata_offers(name)))
    }

    /// The assignor for the new generation: among those every member
    /// offers, the one with the most first-choice votes (ties go to the
    /// earlier preference of the first member).
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&String> = first
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| self.members.values().all(|m| m.metadata_offers(n)))
            .collect();
        let mut best: Option<(&String, usize)> = None;
        for c in &candidates {
            let votes = self
                .members
                .values()
                .filter(|m| {
                    m.protocols
                        .iter()
                        .map(|(n, _)| n)
                        .find(|n| candidates.contains(n))
                        == Some(*c)
                })
                .count();
            if best.is_none_or(|(_, v)| votes > v) {
                best = Some((c, votes));
            }
        }
        best.map(|(n, _)| n.clone())
    }
}

/// What survives a broker restart of a stable or empty group: its
/// generation, assignor, leader and members with their assignments, as
/// Kafka keeps them in its offsets topic. Members' sessions start again
/// when the snapshot is restored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassicSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberSnapshot {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    pub protocols: Vec<(String, Vec<u8>)>,
    pub assignment: Vec<u8>,
}

impl ClassicGroup {
    /// The group as it should survive a restart, if it is at rest (stable
    /// or empty); a group mid-rebalance is stored when it settles.
    pub fn snapshot(&self) -> Option<ClassicSnapshot> {
        if !matches!(self.state, ClassicState::Stable | ClassicState::Empty) {
            return None;
        }
        Some(ClassicSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .values()
                .map(|m| MemberSnapshot {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as u64,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                    protocol_type: m.protocol_type.clone(),
                    protocols: m
                        .protocols
                        .iter()
                        .map(|(n, meta)| (n.clone(), meta.to_vec()))
                        .collect(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        })
    }

    /// A group from its snapshot: stable with its members (who must
    /// heartbeat within their session from now) or empty at its generation.
    pub fn restore(
        id: String,
        snap: ClassicSnapshot,
        timeouts: ClassicTimeouts,
        now: Instant,
    ) -> Self {
        let mut g = ClassicGroup::new(id, timeouts);
        g.generation = snap.generation;
        g.protocol_type = snap.protocol_type;
        g.protocol_name = snap.protocol_name;
        g.leader = snap.leader;
        for m in snap.members {
            if let Some(instance) = &m.instance_id {
                g.static_members.insert(instance.clone(), m.id.clone());
            }
            g.members.insert(
                m.id.clone(),
                ClassicMember {
                    id: m.id,
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    protocol_type: m.protocol_type,
                    protocols: m
                        .protocols
                        .into_iter()
                        .map(|(n, meta)| (n, Bytes::from(meta)))
                        .collect(),
                    assignment: Bytes::from(m.assignment),
                    awaiting_join: None,
                    awaiting_sync: None,
                    synced: true,
                    last_heartbeat: now,
                },
            );
        }
        g.state = if g.members.is_empty() {
            ClassicState::Empty
        } else {
            ClassicState::Stable
        };
        g
    }
}

impl ClassicMember {
    fn metadata_offers(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
}

/// Member ids start with the client id, as Kafka's do, so operators can
/// tell members apart.
fn member_prefix(req: &JoinRequest) -> String {
    match &req.instance_id {
        Some(instance) => instance.clone(),
        None if req.client_id.is_empty() => "member".into(),
        None => req.client_id.clone(),
    }
}

fn member_error_text(code: ErrorCode, group: &str) -> String {
    match code {
        ErrorCode::FencedInstanceId => format!(
            "another member of group `{group}` now holds this group.instance.id"
        ),
        _ => format!("this member is not (or no longer) a member of group `{group}`; rejoin without a member id"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> ClassicTimeouts {
        ClassicTimeouts {
            initial_rebalance_delay: Duration::ZERO,
            min_session: Duration::from_millis(10),
            max_session: Duration::from_secs(600),
        }
    }

    fn join_req(member_id: &str, instance: Option<&str>) -> JoinRequest {
        JoinRequest {
            member_id: member_id.into(),
            instance_id: instance.map(str::to_string),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(10),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: true,
        }
    }

    fn sync_req(
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> SyncRequest {
        SyncRequest {
            member_id: member_id.into(),
            instance_id: instance_id.map(str::to_string),
            generation,
            assignments,
            ..Default::default()
        }
    }

    fn now_result<T>(p: Pending<T>) -> T {
        match p {
            Pending::Now(r) => r,
            Pending::Wait(mut rx) => rx.try_recv().expect("answered"),
        }
    }

    #[test]
    fn two_members_rebalance_and_sync() {
        let mut g = ClassicGroup::new("g".into(), timeouts());
        let now = Instant::now();
        let r = now_result(g.join(join_req("", None), now));
        assert_eq!(r.error, Some(ErrorCode::MemberIdRequired));
        let a = r.member_id;
        let ra = now_result(g.join(join_req(&a, None), now));
        assert_eq!((ra.generation, ra.leader.as_str()), (1, a.as_str()));
        assert_eq!(g.state, ClassicState::CompletingRebalance);
        now_result(g.sync(
            sync_req(&a, None, 1, vec![(a.clone(), Bytes::from_static(b"A"))]),
            now,
        ));
        assert_eq!(g.state, ClassicState::Stable);

        // A second member: the first must rejoin; until then heartbeats say so.
        let b = now_result(g.join(join_req("", None), now)).member_id;
        let Pending::Wait(mut b_join) = g.join(join_req(&b, None), now) else {
            panic!("the join waits for the rebalance")
        };
        assert_eq!(
            g.heartbeat(&a, None, 1, now),
            Some(ErrorCode::RebalanceInProgress)
        );
        assert!(b_join.try_recv().is_err());
        let ra = now_result(g.join(join_req(&a, None), now));
        let rb = b_join.try_recv().unwrap();
        assert_eq!((ra.generation, rb.generation), (2, 2));
        assert_eq!(ra.members.len(), 2, "the leader gets every member");
        assert!(rb.members.is_empty());
        assert_eq!(
            g.heartbeat(&a, None, 1, now),
            Some(ErrorCode::IllegalGeneration)
        );
        let Pending::Wait(mut b_sync) = g.sync(sync_req(&b, None, 2, vec![]), now) else {
            panic!("a follower's sync waits for the leader")
        };
        now_result(g.sync(
            sync_req(
                &a,
                None,
                2,
                vec![
                    (a.clone(), Bytes::from_static(b"A")),
                    (b.clone(), Bytes::from_static(b"B")),
                ],
            ),
            now,
        ));
        assert_eq!(
            b_sync.try_recv().unwrap().assignment,
            Bytes::from_static(b"B")
        );
        assert_eq!(g.heartbeat(&b, None, 2, now), None);
        assert_eq!(
            g.heartbeat("nobody", None, 2, now),
            Some(ErrorCode::UnknownMemberId)
        );

        // b leaves; a must rejoin alone.
        assert_eq!(g.leave(&b, None, now), None);
        assert_eq!(g.state, ClassicState::PreparingRebalance);
        let ra = now_result(g.join(join_req(&a, None), now));
        assert_eq!(ra.generation, 3);
    }

    #[test]
    fn sessions_expire_and_the_last_member_empties_the_group() {
        let mut g = ClassicGroup::new("g".into(), timeouts());
        let now = Instant::now();
        let a = now_result(g.join(join_req("", None), now)).member_id;
        now_result(g.join(join_req(&a, None), now));
        now_result(g.sync(sync_req(&a, None, 1, vec![]), now));
        g.tick(now + Duration::from_secs(5));
        assert_eq!(g.state, ClassicState::Stable);
        g.tick(now + Duration::from_secs(11));
        assert_eq!(g.state, ClassicState::Empty);
        assert!(g.members.is_empty());
        assert_eq!(g.generation, 2);
    }

    #[test]
    fn static_member_rejoining_keeps_its_assignment_and_fences_the_old_id() {
        let mut g = ClassicGroup::new("g".into(), timeouts());
        let now = Instant::now();
        let first = now_result(g.join(join_req("", Some("i1")), now));
        assert_eq!(
            first.error, None,
            "static members need no MEMBER_ID_REQUIRED round"
        );
        let old = first.member_id;
        now_result(g.sync(
            sync_req(
                &old,
                Some("i1"),
                1,
                vec![(old.clone(), Bytes::from_static(b"A"))],
            ),
            now,
        ));
        let again = now_result(g.join(join_req("", Some("i1")), now));
        assert_eq!(
            again.generation, 1,
            "no rebalance for an unchanged static member"
        );
        assert_ne!(again.member_id, old);
        assert_eq!(
            g.heartbeat(&old, Some("i1"), 1, now),
            Some(ErrorCode::FencedInstanceId)
        );
        let s = now_result(g.sync(sync_req(&again.member_id, Some("i1"), 1, vec![]), now));
        assert_eq!(s.assignment, Bytes::from_static(b"A"));
    }
}
