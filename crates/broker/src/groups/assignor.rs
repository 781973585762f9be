//! Server-side assignors of the consumer protocol (KIP-848): `uniform`
//! (sticky, balanced) and `range` (contiguous ranges per topic).

use std::collections::{BTreeMap, BTreeSet};

/// A topic partition by name.
pub type TopicPartition = (String, i32);

/// What an assignor sees of one member.
pub struct AssignorMember<'a> {
    pub subscribed: &'a BTreeSet<String>,
    /// Its current target, which `uniform` keeps where it can.
    pub current: &'a BTreeSet<TopicPartition>,
}

/// The assignors we serve, by the names clients send.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// Assigns the partitions of the subscribed topics (`topics`: name →
/// partition count) to members. Every partition of a subscribed topic
/// goes to exactly one member subscribed to it.
pub fn assign(
    assignor: &str,
    members: &BTreeMap<String, AssignorMember<'_>>,
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    match assignor {
        "range" => range(members, topics),
        _ => uniform(members, topics),
    }
}

/// Range: per topic, its subscribers in member-id order get contiguous
/// ranges, the first ones one partition more when it does not divide.
fn range(
    members: &BTreeMap<String, AssignorMember<'_>>,
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut out: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|id| (id.clone(), BTreeSet::new()))
        .collect();
    for (topic, &count) in topics {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(id, _)| id)
            .collect();
        if subscribers.is_empty() {
            continue;
        }
        let n = subscribers.len() as i32;
        let (each, extra) = (count / n, count % n);
        let mut next = 0;
        for (i, id) in subscribers.iter().enumerate() {
            let take = each + i32::from((i as i32) < extra);
            let set = out.entry((*id).clone()).or_default();
            for p in next..next + take {
                set.insert((topic.clone(), p));
            }
            next += take;
        }
    }
    out
}

/// Uniform: balanced counts, and a member keeps the partitions it already
/// has while it is not over its share, so a rebalance moves few partitions.
fn uniform(
    members: &BTreeMap<String, AssignorMember<'_>>,
    topics: &BTreeMap<String, i32>,
) -> BTreeMap<String, BTreeSet<TopicPartition>> {
    let mut out: BTreeMap<String, BTreeSet<TopicPartition>> = members
        .keys()
        .map(|id| (id.clone(), BTreeSet::new()))
        .collect();
    let all: Vec<TopicPartition> = topics
        .iter()
        .filter(|(t, _)| members.values().any(|m| m.subscribed.contains(*t)))
        .flat_map(|(t, &count)| (0..count).map(move |p| (t.clone(), p)))
        .collect();
    if members.is_empty() || all.is_empty() {
        return out;
    }
    // The share of each member when everyone subscribes to everything; with
    // mixed subscriptions it only caps stickiness, the greedy pass balances.
    let share = all.len().div_ceil(members.len());
    let mut taken: BTreeSet<&TopicPartition> = BTreeSet::new();
    for (id, m) in members {
        let keep = out.entry(id.clone()).or_default();
        for tp in m.current {
            if keep.len() >= share {
                break;
            }
            let valid = m.subscribed.contains(&tp.0)
                && topics.get(&tp.0).is_some_and(|&count| tp.1 < count);
            if valid && !taken.contains(tp) {
                keep.insert(tp.clone());
                taken.insert(tp);
            }
        }
    }
    for tp in &all {
        if taken.contains(tp) {
            continue;
        }
        let target = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(&tp.0))
            .min_by_key(|(id, _)| (out.get(*id).map_or(0, BTreeSet::len), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = target {
            out.entry(id).or_default().insert(tp.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(topics: &[&str]) -> BTreeSet<String> {
        topics.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn uniform_balances_and_sticks() {
        let sub = set(&["t"]);
        let none = BTreeSet::new();
        let topics = BTreeMap::from([("t".to_string(), 12)]);
        let members = BTreeMap::from([
            (
                "a".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &none,
                },
            ),
            (
                "b".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &none,
                },
            ),
        ]);
        let first = assign("uniform", &members, &topics);
        assert_eq!(first["a"].len(), 6);
        assert_eq!(first["b"].len(), 6);
        // A third member takes two from each; a and b keep four each.
        let members = BTreeMap::from([
            (
                "a".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &first["a"],
                },
            ),
            (
                "b".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &first["b"],
                },
            ),
            (
                "c".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &none,
                },
            ),
        ]);
        let second = assign("uniform", &members, &topics);
        for id in ["a", "b", "c"] {
            assert_eq!(second[id].len(), 4, "{id}");
        }
        assert!(second["a"].is_subset(&first["a"]));
        assert!(second["b"].is_subset(&first["b"]));
        let union: BTreeSet<_> = second.values().flatten().collect();
        assert_eq!(union.len(), 12, "every partition exactly once");
    }

    #[test]
    fn range_gives_contiguous_ranges_per_topic() {
        let sub = set(&["t", "u"]);
        let only_t = set(&["t"]);
        let none = BTreeSet::new();
        let topics = BTreeMap::from([("t".to_string(), 5), ("u".to_string(), 2)]);
        let members = BTreeMap::from([
            (
                "a".to_string(),
                AssignorMember {
                    subscribed: &sub,
                    current: &none,
                },
            ),
            (
                "b".to_string(),
                AssignorMember {
                    subscribed: &only_t,
                    current: &none,
                },
            ),
        ]);
        let out = assign("range", &members, &topics);
        let t = |p| ("t".to_string(), p);
        let u = |p| ("u".to_string(), p);
        assert_eq!(out["a"], BTreeSet::from([t(0), t(1), t(2), u(0), u(1)]));
        assert_eq!(out["b"], BTreeSet::from([t(3), t(4)]));
    }
}
