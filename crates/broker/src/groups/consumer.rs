//! A group of the consumer protocol (KIP-848): members send
//! ConsumerGroupHeartbeat, the coordinator computes the target assignment
//! with a server-side assignor and reconciles each member toward it.
//!
//! Safety rule: a partition is given to a member only once no other member
//! owns it, so no partition has two owners even while members are between
//! epochs. A member asked to give partitions up keeps its epoch until it
//! confirms (its owned partitions no longer list them), then advances.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sluice_protocol::ErrorCode;

use super::assignor::{assign, AssignorMember, TopicPartition, ASSIGNORS};

/// One ConsumerGroupHeartbeat, with topic ids already resolved to names.
#[derive(Debug, Clone, Default)]
pub struct Heartbeat {
    pub member_id: String,
    /// 0 joins, -1 leaves, -2 leaves as a static member, else the
    /// member's current epoch.
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    /// None when unchanged since the previous heartbeat.
    pub subscribed_names: Option<Vec<String>>,
    pub subscribed_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns; None when unchanged.
    pub owned: Option<BTreeSet<TopicPartition>>,
    /// The prefix every topic it may be assigned starts with (its tenant's),
    /// so a broad regex never hands it another tenant's partitions.
    pub topic_scope: Option<String>,
}

/// A ConsumerGroupHeartbeat answer.
#[derive(Debug, Clone, Default)]
pub struct HeartbeatResult {
    pub error: Option<(ErrorCode, String)>,
    pub member_id: String,
    pub member_epoch: i32,
    /// The member's whole assignment, when it changed.
    pub assignment: Option<BTreeSet<TopicPartition>>,
}

impl HeartbeatResult {
    fn error(code: ErrorCode, member_id: &str, message: impl Into<String>) -> Self {
        HeartbeatResult {
            error: Some((code, message.into())),
            member_id: member_id.to_string(),
            member_epoch: -1,
            assignment: None,
        }
    }
}

/// A member of a consumer-protocol group.
#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// How long it may take to give partitions up before it is fenced.
    pub rebalance_timeout: Duration,
    pub subscribed_names: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    /// `subscribed_regex` compiled once, anchored as Kafka matches it.
    matcher: Option<regex::Regex>,
    /// See [`Heartbeat::topic_scope`]; set when the member joins.
    topic_scope: Option<String>,
    pub member_epoch: i32,
    /// The epoch before the last bump: a member whose response was lost may
    /// still heartbeat with it.
    pub previous_epoch: i32,
    /// What it owns by our account: given to it and not taken back.
    pub assigned: BTreeSet<TopicPartition>,
    /// Partitions it was told to give up and still owns until it confirms.
    pub revoking: BTreeSet<TopicPartition>,
    revoke_deadline: Option<Instant>,
    last_heartbeat: Instant,
    /// The assignment last sent, so unchanged ones are not resent.
    sent: Option<BTreeSet<TopicPartition>>,
}

impl ConsumerMember {
    /// The existing topics it subscribes to, by name or by its regex.
    fn topics(&self, topics: &BTreeMap<String, i32>) -> BTreeSet<String> {
        topics
            .keys()
            .filter(|t| self.topic_scope.as_ref().is_none_or(|p| t.starts_with(p)))
            .filter(|t| {
                self.subscribed_names.contains(*t)
                    || self.matcher.as_ref().is_some_and(|re| re.is_match(t))
            })
            .cloned()
            .collect()
    }
}

/// Timing rules shared by consumer-protocol groups.
#[derive(Debug, Clone, Copy)]
pub struct ConsumerTimeouts {
    /// Kafka's `group.consumer.session.timeout.ms`.
    pub session: Duration,
    /// Kafka's `group.consumer.heartbeat.interval.ms`, told to members.
    pub heartbeat_interval: Duration,
}

/// A consumer-protocol group.
#[derive(Debug)]
pub struct ConsumerGroup {
    pub id: String,
    /// Advances whenever membership, subscriptions or subscribed topics change.
    pub group_epoch: i32,
    /// The group epoch the target assignment was computed for.
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, BTreeSet<TopicPartition>>,
    /// Partition counts of the subscribed topics the epoch reflects; a
    /// topic created, grown or deleted changes it and so the epoch.
    subscribed_topics: BTreeMap<String, i32>,
    pub timeouts: ConsumerTimeouts,
}

impl ConsumerGroup {
    pub fn new(id: String, timeouts: ConsumerTimeouts) -> Self {
        ConsumerGroup {
            id,
            group_epoch: 0,
            assignment_epoch: 0,
            assignor: ASSIGNORS[0].to_string(),
            members: BTreeMap::new(),
            target: BTreeMap::new(),
            subscribed_topics: BTreeMap::new(),
            timeouts,
        }
    }

    /// The state name ConsumerGroupDescribe and ListGroups report.
    pub fn state(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.group_epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            m.member_epoch != self.assignment_epoch
                || !m.revoking.is_empty()
                || self.target.get(&m.id) != Some(&m.assigned)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles a heartbeat. `topics` maps every existing topic to its
    /// partition count.
    pub fn heartbeat(
        &mut self,
        hb: Heartbeat,
        topics: &BTreeMap<String, i32>,
        now: Instant,
    ) -> HeartbeatResult {
        if hb.member_epoch < 0 {
            if self.members.remove(&hb.member_id).is_none() {
                return HeartbeatResult::error(
                    ErrorCode::UnknownMemberId,
                    &hb.member_id,
                    format!("`{}` is not a member of group `{}`", hb.member_id, self.id),
                );
            }
            self.group_epoch += 1;
            return HeartbeatResult {
                error: None,
                member_id: hb.member_id,
                member_epoch: hb.member_epoch,
                assignment: None,
            };
        }
        if let Some(name) = &hb.server_assignor {
            if !ASSIGNORS.contains(&name.as_str()) {
                return HeartbeatResult::error(
                    ErrorCode::UnsupportedAssignor,
                    &hb.member_id,
                    format!("assignor `{name}` is not served; use one of {ASSIGNORS:?}"),
                );
            }
        }
        let id = hb.member_id.clone();
        // One heartbeat advances the group epoch at most once.
        let mut changed = false;
        if hb.member_epoch == 0 {
            if hb.subscribed_names.is_none() && hb.subscribed_regex.is_none() {
                return HeartbeatResult::error(
                    ErrorCode::InvalidRequest,
                    &id,
                    "a joining member must send its subscribed topic names or regex",
                );
            }
            // A member joining (or rejoining after being fenced) owns nothing.
            self.members.insert(
                id.clone(),
                ConsumerMember {
                    id: id.clone(),
                    instance_id: hb.instance_id.clone(),
                    rack_id: hb.rack_id.clone(),
                    client_id: hb.client_id.clone(),
                    client_host: hb.client_host.clone(),
                    rebalance_timeout: hb.rebalance_timeout,
                    subscribed_names: BTreeSet::new(),
                    subscribed_regex: None,
                    matcher: None,
                    topic_scope: hb.topic_scope.clone(),
                    member_epoch: 0,
                    previous_epoch: -1,
                    assigned: BTreeSet::new(),
                    revoking: BTreeSet::new(),
                    revoke_deadline: None,
                    last_heartbeat: now,
                    sent: None,
                },
            );
            changed = true;
        } else {
            let Some(m) = self.members.get(&id) else {
                return HeartbeatResult::error(
                    ErrorCode::UnknownMemberId,
                    &id,
                    format!(
                        "`{id}` is not a member of group `{}`; rejoin with epoch 0",
                        self.id
                    ),
                );
            };
            let lost_response = hb.member_epoch == m.previous_epoch
                && hb.owned.as_ref().is_some_and(|o| o.is_subset(&m.assigned));
            if hb.member_epoch != m.member_epoch && !lost_response {
                return HeartbeatResult::error(
                    ErrorCode::FencedMemberEpoch,
                    &id,
                    format!(
                        "member epoch {} is not the current epoch {} of this member; rejoin with epoch 0",
                        hb.member_epoch, m.member_epoch
                    ),
                );
            }
        }
        let Some(m) = self.members.get_mut(&id) else {
            return HeartbeatResult::error(ErrorCode::UnknownMemberId, &id, "member vanished");
        };
        m.last_heartbeat = now;
        if !hb.rebalance_timeout.is_zero() {
            m.rebalance_timeout = hb.rebalance_timeout;
        }
        if let Some(names) = hb.subscribed_names {
            let names: BTreeSet<String> = names.into_iter().collect();
            changed |= names != m.subscribed_names;
            m.subscribed_names = names;
        }
        if let Some(regex) = hb.subscribed_regex {
            let regex = (!regex.is_empty()).then_some(regex);
            if regex != m.subscribed_regex {
                changed = true;
                m.matcher = regex
                    .as_deref()
                    .and_then(|r| regex::Regex::new(&format!("^(?:{r})$")).ok());
                m.subscribed_regex = regex;
            }
        }
        if let Some(name) = hb.server_assignor {
            if name != self.assignor {
                self.assignor = name;
                changed = true;
            }
        }
        let subscribed = self.subscribed_topic_counts(topics);
        if subscribed != self.subscribed_topics {
            self.subscribed_topics = subscribed;
            changed = true;
        }
        if changed {
            self.group_epoch += 1;
        }
        if self.group_epoch > self.assignment_epoch {
            self.compute_target(topics);
        }
        let resend = hb.member_epoch == 0;
        self.reconcile(&id, hb.owned, resend, now)
    }

    /// Whether an offset commit (or fetch) by this member and epoch is
    /// accepted: the epoch must be the member's current one.
    pub fn check_member_epoch(&self, member_id: &str, epoch: i32) -> Option<ErrorCode> {
        if member_id.is_empty() && epoch < 0 {
            return (!self.members.is_empty()).then_some(ErrorCode::UnknownMemberId);
        }
        match self.members.get(member_id) {
            None => Some(ErrorCode::UnknownMemberId),
            Some(m) if m.member_epoch != epoch => Some(ErrorCode::StaleMemberEpoch),
            Some(_) => None,
        }
    }

    /// Fences members whose session lapsed or who did not give partitions
    /// up within their rebalance timeout.
    pub fn tick(&mut self, now: Instant) {
        let session = self.timeouts.session;
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                now > m.last_heartbeat + session || m.revoke_deadline.is_some_and(|d| now > d)
            })
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "fencing member: session or revocation timed out");
            self.members.remove(&id);
            self.group_epoch += 1;
        }
    }

    fn subscribed_topic_counts(&self, topics: &BTreeMap<String, i32>) -> BTreeMap<String, i32> {
        self.members
            .values()
            .flat_map(|m| m.topics(topics))
            .filter_map(|name| topics.get(&name).map(|&count| (name, count)))
            .collect()
    }

    fn compute_target(&mut self, topics: &BTreeMap<String, i32>) {
        let subscriptions: BTreeMap<String, BTreeSet<String>> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.topics(topics)))
            .collect();
        let empty = BTreeSet::new();
        let inputs: BTreeMap<String, AssignorMember<'_>> = subscriptions
            .iter()
            .map(|(id, subs)| {
                (
                    id.clone(),
                    AssignorMember {
                        subscribed: subs,
                        current: self.target.get(id).unwrap_or(&empty),
                    },
                )
            })
            .collect();
        self.target = assign(&self.assignor, &inputs, &self.subscribed_topics);
        self.assignment_epoch = self.group_epoch;
    }

    /// Moves one member toward its target: first it gives up what is no
    /// longer its own, then it advances to the assignment epoch and gets
    /// the target partitions nobody else still owns.
    fn reconcile(
        &mut self,
        id: &str,
        owned: Option<BTreeSet<TopicPartition>>,
        resend: bool,
        now: Instant,
    ) -> HeartbeatResult {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let owned_by_others: BTreeSet<TopicPartition> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .flat_map(|m| m.assigned.iter().chain(m.revoking.iter()).cloned())
            .collect();
        let assignment_epoch = self.assignment_epoch;
        let Some(m) = self.members.get_mut(id) else {
            return HeartbeatResult::error(ErrorCode::UnknownMemberId, id, "member vanished");
        };
        if let Some(owned) = &owned {
            m.revoking.retain(|tp| owned.contains(tp));
        }
        let to_revoke: BTreeSet<TopicPartition> = m.assigned.difference(&target).cloned().collect();
        if !to_revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.revoking.extend(to_revoke);
            m.revoke_deadline = Some(now + m.rebalance_timeout);
        } else if m.revoking.is_empty() {
            m.revoke_deadline = None;
            if m.member_epoch != assignment_epoch {
                m.previous_epoch = m.member_epoch;
                m.member_epoch = assignment_epoch;
            }
            for tp in target.difference(&owned_by_others) {
                m.assigned.insert(tp.clone());
            }
        }
        let out_of_step = owned.as_ref().is_some_and(|o| {
            let ours: BTreeSet<TopicPartition> = m.assigned.union(&m.revoking).cloned().collect();
            *o != ours && m.revoking.is_empty()
        });
        let assignment = if resend || out_of_step || m.sent.as_ref() != Some(&m.assigned) {
            m.sent = Some(m.assigned.clone());
            Some(m.assigned.clone())
        } else {
            None
        };
        HeartbeatResult {
            error: None,
            member_id: id.to_string(),
            member_epoch: m.member_epoch,
            assignment,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> ConsumerGroup {
        ConsumerGroup::new(
            "g".into(),
            ConsumerTimeouts {
                session: Duration::from_secs(45),
                heartbeat_interval: Duration::from_secs(5),
            },
        )
    }

    fn join(id: &str) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout: Duration::from_secs(30),
            subscribed_names: Some(vec!["t".into()]),
            ..Default::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &BTreeSet<TopicPartition>) -> Heartbeat {
        Heartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            owned: Some(owned.clone()),
            ..Default::default()
        }
    }

    #[test]
    fn a_scoped_member_is_assigned_only_topics_under_its_scope() {
        let topics = BTreeMap::from([("acme.t".to_string(), 2), ("bravo.t".to_string(), 2)]);
        let mut g = group();
        let hb = Heartbeat {
            subscribed_names: None,
            subscribed_regex: Some(".*".into()),
            topic_scope: Some("acme.".into()),
            ..join("a")
        };
        let r = g.heartbeat(hb, &topics, Instant::now());
        let assigned = r.assignment.unwrap();
        assert_eq!(assigned.len(), 2);
        assert!(
            assigned.iter().all(|tp| tp.0.starts_with("acme.")),
            "{assigned:?}"
        );
    }

    #[test]
    fn partitions_move_only_after_their_owner_lets_go() {
        let topics = BTreeMap::from([("t".to_string(), 4)]);
        let now = Instant::now();
        let mut g = group();
        let a = g.heartbeat(join("a"), &topics, now);
        let a_owned = a.assignment.clone().unwrap();
        assert_eq!((a.member_epoch, a_owned.len()), (1, 4));

        let b = g.heartbeat(join("b"), &topics, now);
        assert_eq!(b.member_epoch, 2);
        assert!(
            b.assignment.unwrap().is_empty(),
            "b gets nothing a still owns"
        );
        // a is told to give two partitions up, keeping its epoch.
        let a2 = g.heartbeat(beat("a", 1, &a_owned), &topics, now);
        assert_eq!(a2.member_epoch, 1);
        let a_keep = a2.assignment.unwrap();
        assert_eq!(a_keep.len(), 2);
        assert_eq!(g.state(), "Reconciling");
        // a confirms; it advances to epoch 2.
        let a3 = g.heartbeat(beat("a", 1, &a_keep), &topics, now);
        assert_eq!(a3.member_epoch, 2);
        // Now b gets the released partitions.
        let b2 = g.heartbeat(beat("b", 2, &BTreeSet::new()), &topics, now);
        let b_owned = b2.assignment.unwrap();
        assert_eq!(b_owned.len(), 2);
        assert!(b_owned.is_disjoint(&a_keep));
        assert_eq!(g.state(), "Stable");

        assert_eq!(
            g.heartbeat(beat("a", 7, &a_keep), &topics, now)
                .error
                .map(|e| e.0),
            Some(ErrorCode::FencedMemberEpoch)
        );
        assert_eq!(
            g.check_member_epoch("b", 1),
            Some(ErrorCode::StaleMemberEpoch)
        );
        assert_eq!(g.check_member_epoch("b", 2), None);

        // b's session lapses while a keeps beating: a gets everything back.
        let later = now + Duration::from_secs(40);
        assert!(g
            .heartbeat(beat("a", 2, &a_keep), &topics, later)
            .error
            .is_none());
        g.tick(now + Duration::from_secs(46));
        assert!(!g.members.contains_key("b"));
        assert!(g.members.contains_key("a"));
        let a4 = g.heartbeat(
            beat("a", 2, &a_keep),
            &topics,
            now + Duration::from_secs(46),
        );
        assert_eq!(a4.assignment.unwrap().len(), 4);
    }
}
