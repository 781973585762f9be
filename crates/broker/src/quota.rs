//! Per-tenant quotas on this broker (KIP-219) and capacity.
//!
//! Each tenant gets, on demand, token buckets (see
//! [`sluice_tenancy::quota`]) for produce bytes, fetch bytes and requests,
//! at its current plan's rates times this broker's share (1 on one broker;
//! [`Quotas::set_share`] is the hook a cluster coordinator uses). A changed
//! plan applies at the tenant's next request. Operators, superusers and an
//! open broker are never throttled.
//!
//! Throttling follows KIP-219: the broker answers at once with
//! `throttle_time_ms` and then mutes the connection (reads no further
//! request) for that long. A produce is appended first, as Kafka does; a
//! fetch from a tenant already over its consume quota is answered at once
//! with no records. The request-rate limit throttles every response the
//! same way.
//!
//! Capacity: every [`SCAN_INTERVAL`] the stored bytes of each tenant's
//! topics (one catalog query) replace the running count, to which every
//! produce adds its bytes so a burst between scans cannot overshoot by
//! much. At or over the plan's capacity, produce is refused with
//! POLICY_VIOLATION.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    FetchRequest, FetchResponse, ProduceRequest, ProduceResponse, RequestKind, ResponseKind,
};
use sluice_protocol::ErrorCode;
use sluice_storage::Storage;
use sluice_tenancy::quota::QuotaBucket;
use sluice_tenancy::{names, Plan, Principal, Tenancy};
use tokio::time::Instant;

use crate::handlers::{count_error, text, Reply, RequestMeta};

/// How often retained bytes are recounted from the catalog.
pub const SCAN_INTERVAL: Duration = Duration::from_secs(5);

/// One tenant's quota state on this broker.
pub struct TenantQuota {
    name: String,
    buckets: Mutex<Buckets>,
    connections: AtomicU32,
    /// Stored bytes at the last scan.
    retained: AtomicU64,
    /// Bytes produced since the last scan.
    appended: AtomicU64,
    /// The capacity warning last logged: 0, 80 or 90 (percent).
    warned: AtomicU8,
}

struct Buckets {
    /// This broker's share of the tenant's cluster-wide rates.
    share: f64,
    produce: QuotaBucket,
    fetch: QuotaBucket,
    requests: QuotaBucket,
}

/// Every tenant's quota state.
pub struct Quotas {
    tenancy: Arc<Tenancy>,
    tenants: Mutex<HashMap<String, Arc<TenantQuota>>>,
}

/// A connection counted against its tenant's limit; released when dropped.
pub struct ConnectionSlot(Arc<TenantQuota>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// When a muted connection may read its next request.
#[derive(Default)]
pub struct Mute(Mutex<Option<Instant>>);

impl Mute {
    /// Mutes for at least `d` from now.
    pub fn extend(&self, d: Duration) {
        if d.is_zero() {
            return;
        }
        let until = Instant::now() + d;
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.is_none_or(|t| t < until) {
            *m = Some(until);
        }
    }

    /// The deadline, if still ahead.
    pub fn deadline(&self) -> Option<Instant> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match *m {
            Some(t) if t > Instant::now() => Some(t),
            _ => {
                *m = None;
                None
            }
        }
    }
}

/// What [`Quotas::admit`] decided for a request.
pub enum Admit {
    /// Handle it; `meta` carries the throttle for the response, and a
    /// tenant's fetch reply must go through [`after_fetch`].
    Go(RequestMeta, Option<Arc<TenantQuota>>),
    /// Answered without handling (throttled fetch, produce over capacity).
    Answer(Reply),
}

fn ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}

fn throttled(tenant: &str, kind: &'static str, d: Duration) {
    if !d.is_zero() {
        metrics::histogram!("sluice_throttle_time_seconds", "tenant" => tenant.to_string(), "kind" => kind)
            .record(d.as_secs_f64());
    }
}

impl Quotas {
    pub fn new(tenancy: Arc<Tenancy>) -> Arc<Quotas> {
        Arc::new(Quotas {
            tenancy,
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// The tenant's state, created on demand, with its rates brought up to
    /// its current plan.
    fn state(&self, tenant: &str, plan: &Plan) -> Arc<TenantQuota> {
        let now = std::time::Instant::now();
        let t = self
            .tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(TenantQuota {
                    name: tenant.to_string(),
                    buckets: Mutex::new(Buckets {
                        share: 1.0,
                        produce: QuotaBucket::new(plan.produce_bytes_per_sec, now),
                        fetch: QuotaBucket::new(plan.consume_bytes_per_sec, now),
                        requests: QuotaBucket::new(plan.max_requests_per_sec as u64, now),
                    }),
                    connections: AtomicU32::new(0),
                    retained: AtomicU64::new(0),
                    appended: AtomicU64::new(0),
                    warned: AtomicU8::new(0),
                })
            })
            .clone();
        t.buckets().sync(plan, now);
        t
    }

    /// The tenant a principal is throttled as; `None` for operators,
    /// superusers and an open broker.
    fn tenant_of(&self, principal: Option<&Principal>) -> Option<(Arc<TenantQuota>, Arc<Plan>)> {
        let p = principal?;
        if p.superuser {
            return None;
        }
        let (tenant, plan) = self.tenancy.principal_plan(p)?;
        Some((self.state(&tenant, &plan), plan))
    }

    /// This broker's share (0..=1) of a tenant's cluster-wide rates: the
    /// hook for re-balancing shares across brokers by observed demand.
    pub fn set_share(&self, tenant: &str, share: f64) {
        let Ok(plan) = self.tenancy.tenant_plan(tenant) else {
            return;
        };
        let t = self.state(tenant, &plan);
        let mut b = t.buckets();
        b.share = share.clamp(0.0, 1.0);
        b.sync(&plan, std::time::Instant::now());
    }

    /// Counts `bytes` written for `tenant` outside the Kafka listener (the
    /// REST API's `POST /v1/topics/{topic}/records`) against its capacity
    /// and produce quota, as a produce request is counted. At or over
    /// capacity the write is refused with the message a Kafka producer gets
    /// with POLICY_VIOLATION; otherwise the answer is how long the caller
    /// should wait before answering (the produce throttle).
    pub fn admit_write(&self, tenant: &str, bytes: u64) -> Result<Duration, String> {
        let Ok(plan) = self.tenancy.tenant_plan(tenant) else {
            return Ok(Duration::ZERO);
        };
        let t = self.state(tenant, &plan);
        if let Some(message) = t.over_capacity(&plan) {
            return Err(message);
        }
        t.appended.fetch_add(bytes, Ordering::Relaxed);
        metrics::counter!("sluice_tenant_bytes_in_total", "tenant" => t.name.clone())
            .increment(bytes);
        let d = t.buckets().produce.record(bytes, std::time::Instant::now());
        throttled(&t.name, "produce", d);
        Ok(d)
    }

    /// Counts `bytes` read for `tenant` outside the Kafka listener (the
    /// REST API's `GET /v1/topics/{topic}/records`) against its consume
    /// quota, as a fetch response is counted. The answer is how long the
    /// caller should wait before answering (the fetch throttle).
    pub fn admit_read(&self, tenant: &str, bytes: u64) -> Duration {
        let Ok(plan) = self.tenancy.tenant_plan(tenant) else {
            return Duration::ZERO;
        };
        self.state(tenant, &plan).record_read(bytes)
    }

    /// Counts an authenticated connection against its tenant's limit; the
    /// refusal names the limit.
    pub fn open_connection(&self, principal: &Principal) -> Result<Option<ConnectionSlot>, String> {
        let Some((t, plan)) = self.tenant_of(Some(principal)) else {
            return Ok(None);
        };
        let max = plan.max_connections;
        let prev = t.connections.fetch_add(1, Ordering::Relaxed);
        let slot = ConnectionSlot(t);
        if prev >= max {
            return Err(format!(
                "tenant `{}` already has {prev} connections open on this broker, the limit of its plan {} (max_connections = {max}); close idle clients or move to a larger plan",
                slot.0.name, plan.name
            ));
        }
        Ok(Some(slot))
    }

    /// Counts a request against its tenant's quotas before it is handled.
    pub fn admit(
        &self,
        principal: Option<&Principal>,
        mute: &Arc<Mute>,
        body: &RequestKind,
        mut meta: RequestMeta,
    ) -> Admit {
        let Some((t, plan)) = self.tenant_of(principal) else {
            return Admit::Go(meta, None);
        };
        let now = std::time::Instant::now();
        let mut throttle = t.buckets().requests.record(1, now);
        throttled(&t.name, "request", throttle);
        match body {
            RequestKind::Produce(r) => {
                if let Some(message) = t.over_capacity(&plan) {
                    meta.throttle_ms = ms(throttle);
                    mute.extend(throttle);
                    return Admit::Answer(refuse_produce(r, meta, &message));
                }
                let bytes: u64 = r
                    .topic_data
                    .iter()
                    .flat_map(|t| &t.partition_data)
                    .map(|p| p.records.as_ref().map_or(0, |r| r.len() as u64))
                    .sum();
                t.appended.fetch_add(bytes, Ordering::Relaxed);
                metrics::counter!("sluice_tenant_bytes_in_total", "tenant" => t.name.clone())
                    .increment(bytes);
                let d = t.buckets().produce.record(bytes, now);
                throttled(&t.name, "produce", d);
                throttle = throttle.max(d);
            }
            RequestKind::Fetch(r) => {
                let d = t.buckets().fetch.pending(now);
                if !d.is_zero() {
                    throttled(&t.name, "fetch", d);
                    let d = d.max(throttle);
                    meta.throttle_ms = ms(d);
                    mute.extend(d);
                    return Admit::Answer(Reply::Ready(throttled_fetch(r, meta)));
                }
            }
            _ => {}
        }
        meta.throttle_ms = ms(throttle);
        mute.extend(throttle);
        Admit::Go(meta, Some(t))
    }

    /// Starts the periodic recount of retained bytes (inside a Tokio
    /// runtime); it stops when the quotas are dropped.
    pub fn start_capacity_scan(self: &Arc<Self>, storage: Arc<Storage>) {
        let weak: Weak<Quotas> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SCAN_INTERVAL);
            loop {
                tick.tick().await;
                let Some(q) = weak.upgrade() else { break };
                if let Err(e) = q.scan(&storage).await {
                    tracing::warn!(error = %e, "counting tenants' retained bytes");
                }
            }
        });
    }

    async fn scan(&self, storage: &Storage) -> Result<(), sluice_storage::StorageError> {
        if !self.tenancy.enabled() {
            return Ok(());
        }
        // Bytes produced before the query are in it (or in flight to it);
        // only those produced since then are kept as `appended`.
        let before: Vec<_> = self
            .tenancy
            .tenants()
            .into_iter()
            .filter_map(|info| {
                let plan = self.tenancy.plan(&info.plan).ok()?;
                let t = self.state(&info.name, &plan);
                let appended = t.appended.load(Ordering::Relaxed);
                Some((t, plan, appended))
            })
            .collect();
        let sizes = storage.catalog().bytes_by_topic().await?;
        for (t, plan, appended) in before {
            let prefix = names::prefix(&t.name);
            let retained: i64 = sizes
                .iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(_, b)| *b)
                .sum();
            t.retained.store(retained.max(0) as u64, Ordering::Relaxed);
            t.appended.fetch_sub(appended, Ordering::Relaxed);
            t.report_capacity(&plan);
        }
        // Forget tenants that are gone.
        let live: std::collections::HashSet<String> =
            self.tenancy.tenants().into_iter().map(|i| i.name).collect();
        self.tenants
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|name, t| live.contains(name) || t.connections.load(Ordering::Relaxed) > 0);
        Ok(())
    }
}

impl Buckets {
    fn sync(&mut self, plan: &Plan, now: std::time::Instant) {
        let share = |rate: u64| ((rate as f64) * self.share).round() as u64;
        let (p, f, r) = (
            share(plan.produce_bytes_per_sec),
            share(plan.consume_bytes_per_sec),
            share(plan.max_requests_per_sec as u64),
        );
        if self.produce.rate() != p.max(1) {
            self.produce.set_rate(p, now);
        }
        if self.fetch.rate() != f.max(1) {
            self.fetch.set_rate(f, now);
        }
        if self.requests.rate() != r.max(1) {
            self.requests.set_rate(r, now);
        }
    }
}

impl TenantQuota {
    fn buckets(&self) -> std::sync::MutexGuard<'_, Buckets> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts `bytes` read (a fetch response, a REST read) against the
    /// consume quota; returns the throttle.
    fn record_read(&self, bytes: u64) -> Duration {
        metrics::counter!("sluice_tenant_bytes_out_total", "tenant" => self.name.clone())
            .increment(bytes);
        let d = self
            .buckets()
            .fetch
            .record(bytes, std::time::Instant::now());
        throttled(&self.name, "fetch", d);
        d
    }

    fn usage(&self) -> u64 {
        self.retained.load(Ordering::Relaxed) + self.appended.load(Ordering::Relaxed)
    }

    /// The refusal for a produce at or over capacity.
    fn over_capacity(&self, plan: &Plan) -> Option<String> {
        let used = self.usage();
        (used >= plan.capacity_bytes).then(|| {
            metrics::counter!("sluice_tenant_capacity_refusals_total", "tenant" => self.name.clone())
                .increment(1);
            format!(
                "tenant `{}` stores {} of its {} capacity (plan {}); delete topics or lower retention.ms/retention.bytes to free space, or move to a larger plan",
                self.name,
                human(used),
                human(plan.capacity_bytes),
                plan.name
            )
        })
    }

    /// Gauges, and a warning once per crossing of 80% and 90%.
    fn report_capacity(&self, plan: &Plan) {
        let used = self.usage();
        let ratio = used as f64 / plan.capacity_bytes.max(1) as f64;
        metrics::gauge!("sluice_tenant_retained_bytes", "tenant" => self.name.clone())
            .set(used as f64);
        metrics::gauge!("sluice_tenant_capacity_ratio", "tenant" => self.name.clone()).set(ratio);
        let level = match ratio {
            r if r >= 0.9 => 90,
            r if r >= 0.8 => 80,
            _ => 0,
        };
        let prev = self.warned.swap(level, Ordering::Relaxed);
        if level > prev {
            tracing::warn!(
                tenant = %self.name,
                plan = %plan.name,
                used = %human(used),
                capacity = %human(plan.capacity_bytes),
                "tenant has crossed {level}% of its capacity; produce is refused at 100%"
            );
        }
    }
}

/// Records the size of a tenant's fetch response against its consume
/// quota; a debt throttles the connection's following fetches.
pub fn after_fetch(tenant: Option<Arc<TenantQuota>>, mute: Arc<Mute>, reply: Reply) -> Reply {
    match (tenant, reply) {
        (Some(t), Reply::Later(fut)) => Reply::Later(record_fetch(t, mute, fut)),
        (_, reply) => reply,
    }
}

fn record_fetch(
    t: Arc<TenantQuota>,
    mute: Arc<Mute>,
    fut: BoxFuture<'static, Option<bytes::Bytes>>,
) -> BoxFuture<'static, Option<bytes::Bytes>> {
    async move {
        let out = fut.await;
        mute.extend(t.record_read(out.as_ref().map_or(0, |b| b.len() as u64)));
        out
    }
    .boxed()
}

/// POLICY_VIOLATION for every partition of a produce (at acks=0, a closed
/// connection, as for any produce error).
fn refuse_produce(r: &ProduceRequest, meta: RequestMeta, message: &str) -> Reply {
    if r.acks == 0 {
        return Reply::Close;
    }
    let topics = r
        .topic_data
        .iter()
        .map(|t| {
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_partition_responses(
                    t.partition_data
                        .iter()
                        .map(|p| {
                            PartitionProduceResponse::default()
                                .with_index(p.index)
                                .with_error_code(count_error(meta, ErrorCode::PolicyViolation))
                                .with_error_message(Some(text(message)))
                                .with_base_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    Reply::Ready(meta.encode(ResponseKind::Produce(
        ProduceResponse::default().with_responses(topics),
    )))
}

/// The answer to a fetch over the consume quota: nothing, at once (the
/// throttle is in `meta`).
fn throttled_fetch(r: &FetchRequest, meta: RequestMeta) -> Option<bytes::Bytes> {
    // Keep the client's fetch session alive, as Kafka does.
    meta.encode(ResponseKind::Fetch(
        FetchResponse::default().with_session_id(r.session_id.max(0)),
    ))
}

/// Sets `throttle_time_ms` on a response that has it (every API but the
/// SASL ones); a larger throttle already set by the handler is kept.
pub fn apply_throttle(body: &mut ResponseKind, ms: i32) {
    macro_rules! set {
        ($($kind:ident),*) => {
            match body {
                $(ResponseKind::$kind(r) => r.throttle_time_ms = r.throttle_time_ms.max(ms),)*
                _ => {}
            }
        };
    }
    set!(
        Produce,
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        DescribeCluster,
        InitProducerId,
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        OffsetDelete,
        OffsetForLeaderEpoch,
        ListGroups,
        DescribeGroups,
        DeleteGroups,
        ConsumerGroupHeartbeat,
        ConsumerGroupDescribe,
        CreateAcls,
        DescribeAcls,
        DeleteAcls
    );
}

/// Bytes for people: `4.0 GiB`, `3.5 MiB`, `12.0 KiB`, `512 B`.
pub fn human(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(human(4 << 30), "4.0 GiB");
        assert_eq!(human(3 << 19), "1.5 MiB");
        assert_eq!(human(512), "512 B");
    }

    #[tokio::test]
    async fn a_mute_lasts_its_longest_throttle() {
        let m = Mute::default();
        assert!(m.deadline().is_none());
        m.extend(Duration::from_millis(200));
        m.extend(Duration::from_millis(50));
        let d = m.deadline().unwrap() - Instant::now();
        assert!(d > Duration::from_millis(100), "{d:?}");
    }
}
