//! A group as operators look at it: state, members with their assignments,
//! and per partition the committed offset, the log end and the lag. Serves
//! the control plane's group views (`sluice groups list|describe`).

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_storage::StorageError;

use super::{lock, offsets, Group, GroupCoordinator};

/// One member and what it consumes.
#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub assignment: Vec<PartitionRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PartitionRef {
    pub topic: String,
    pub partition: i32,
}

/// One partition the group consumes or committed an offset for.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// None when the group never committed an offset for it.
    pub committed_offset: Option<i64>,
    /// The high watermark; None when the topic or partition is gone.
    pub log_end_offset: Option<i64>,
    pub lag: Option<i64>,
    /// The member it is assigned to, if any.
    pub member_id: Option<String>,
}

/// A group in full.
#[derive(Debug, Clone, Serialize)]
pub struct GroupView {
    pub group_id: String,
    /// `classic` or `consumer` (KIP-848).
    pub group_type: String,
    pub state: String,
    /// The assignor: chosen among the members' (classic) or the server's.
    pub assignor: Option<String>,
    /// Generation (classic) or group epoch (consumer protocol).
    pub epoch: i32,
    pub members: Vec<MemberView>,
    pub partitions: Vec<PartitionLag>,
    /// Sum of the partitions' lag.
    pub total_lag: i64,
}

impl GroupCoordinator {
    /// Describes a group; None if neither memory nor the catalog knows it.
    pub async fn describe(&self, group_id: &str) -> Result<Option<GroupView>, StorageError> {
        let known = self
            .storage
            .catalog()
            .list_groups()
            .await?
            .into_iter()
            .any(|g| g.group_id == group_id);
        let live = self.group(group_id);
        let mut view = match live.as_ref().map(|g| lock(g)) {
            Some(g) if g.has_members() => live_view(group_id, &g),
            _ if known => GroupView {
                group_id: group_id.to_string(),
                group_type: "classic".into(),
                state: "Empty".into(),
                assignor: None,
                epoch: 0,
                members: Vec::new(),
                partitions: Vec::new(),
                total_lag: 0,
            },
            _ => return Ok(None),
        };
        let committed = self.fetch_offsets(group_id, None).await?;
        let mut rows: BTreeMap<PartitionRef, PartitionLag> = BTreeMap::new();
        for m in &view.members {
            for p in &m.assignment {
                rows.insert(p.clone(), self.lag_row(p, None, Some(m.member_id.clone())));
            }
        }
        for (topic, offsets) in committed {
            for c in offsets {
                let p = PartitionRef {
                    topic: topic.clone(),
                    partition: c.partition,
                };
                let member = rows.get(&p).and_then(|r| r.member_id.clone());
                rows.insert(p.clone(), self.lag_row(&p, Some(c.offset), member));
            }
        }
        view.partitions = rows.into_values().collect();
        view.total_lag = view.partitions.iter().filter_map(|p| p.lag).sum();
        Ok(Some(view))
    }

    fn lag_row(
        &self,
        p: &PartitionRef,
        committed: Option<i64>,
        member: Option<String>,
    ) -> PartitionLag {
        let log_end = self
            .storage
            .partition(&p.topic, p.partition)
            .ok()
            .map(|log| log.high_watermark());
        let lag = match (committed, log_end) {
            (Some(c), Some(end)) => Some((end - c).max(0)),
            // Nothing committed yet: everything in the log is still to read.
            (None, Some(end)) => Some(end),
            _ => None,
        };
        PartitionLag {
            topic: p.topic.clone(),
            partition: p.partition,
            committed_offset: committed,
            log_end_offset: log_end,
            lag,
            member_id: member,
        }
    }
}

fn live_view(group_id: &str, g: &Group) -> GroupView {
    let refs = |parts: Vec<(String, i32)>| -> Vec<PartitionRef> {
        parts
            .into_iter()
            .map(|(topic, partition)| PartitionRef { topic, partition })
            .collect()
    };
    let (assignor, epoch, members) = match g {
        Group::Classic(c) => (
            c.protocol_name.clone(),
            c.generation,
            c.members
                .values()
                .map(|m| MemberView {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment: refs(offsets::assignment_partitions(&m.assignment)),
                })
                .collect(),
        ),
        Group::Consumer(c) => (
            Some(c.assignor.clone()),
            c.group_epoch,
            c.members
                .values()
                .map(|m| MemberView {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    assignment: refs(m.assigned.iter().cloned().collect()),
                })
                .collect(),
        ),
    };
    GroupView {
        group_id: group_id.to_string(),
        group_type: g.group_type().into(),
        state: g.state().into(),
        assignor,
        epoch,
        members,
        partitions: Vec::new(),
        total_lag: 0,
    }
}
