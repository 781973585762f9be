//! Storage errors. Each maps to the Kafka error code a client should see,
//! and its text is the `error_message` that explains it, except for the
//! broker's own failures, whose details stay in the log
//! ([`StorageError::client_message`]).

use sluice_protocol::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("topic `{0}` does not exist")]
    UnknownTopic(String),
    #[error("partition {partition} of topic `{topic}` does not exist (the topic has {count} partitions)")]
    UnknownPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("topic `{0}` already exists")]
    TopicExists(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("offset {offset} is out of range for {topic}-{partition}: the log holds [{log_start}, {high_watermark})")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        log_start: i64,
        high_watermark: i64,
    },
    #[error("this broker is no longer the leader of {topic}-{partition}")]
    NotLeader { topic: String, partition: i32 },
    /// KIP-320: the client's metadata is older than the partition's
    /// leader; it refreshes its metadata and retries.
    #[error("leader epoch {requested} of {topic}-{partition} is out of date: its leader is at epoch {current}; refresh the metadata and retry")]
    FencedLeaderEpoch {
        topic: String,
        partition: i32,
        requested: i32,
        current: i32,
    },
    /// KIP-320: the client knows of a newer leader than this broker does.
    #[error("leader epoch {requested} of {topic}-{partition} is newer than this broker's epoch {current}; refresh the metadata and retry")]
    UnknownLeaderEpoch {
        topic: String,
        partition: i32,
        requested: i32,
        current: i32,
    },
    #[error("{0}")]
    InvalidRecord(#[from] sluice_protocol::batch::BatchError),
    #[error("catalog error: {0}")]
    Catalog(String),
    #[error("object store error: {0}")]
    Objects(String),
    /// A commit refused, and rolled back, because its object is no longer
    /// prepared: its registration expired and the collector claimed it.
    #[error("object {0} is not prepared: never registered, or its registration expired and it was claimed for collection")]
    ObjectClaimed(i64),
    #[error("stored object `{0}` is corrupt: {1}")]
    CorruptObject(String, String),
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// A background task's worker thread failed (it panicked).
    #[error("background work failed: {0}")]
    Background(String),
    #[error("{0}")]
    Producer(#[from] crate::producer::ProducerError),
    #[error("producer {producer_id} asked for a new epoch holding epoch {epoch}, but epoch {latest} was handed out since: another instance of this producer fenced it")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        latest: i16,
    },
}

impl StorageError {
    pub fn code(&self) -> ErrorCode {
        use StorageError as S;
        match self {
            S::UnknownTopic(_) | S::UnknownPartition { .. } => ErrorCode::UnknownTopicOrPartition,
            S::TopicExists(_) => ErrorCode::TopicAlreadyExists,
            S::InvalidTopic(_) => ErrorCode::InvalidTopicException,
            S::InvalidPartitions(_) => ErrorCode::InvalidPartitions,
            S::InvalidConfig(_) => ErrorCode::InvalidConfig,
            S::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            S::NotLeader { .. } => ErrorCode::NotLeaderOrFollower,
            S::FencedLeaderEpoch { .. } => ErrorCode::FencedLeaderEpoch,
            S::UnknownLeaderEpoch { .. } => ErrorCode::UnknownLeaderEpoch,
            S::InvalidRecord(e) => e.code(),
            S::Catalog(_)
            | S::Objects(_)
            | S::ObjectClaimed(_)
            | S::CorruptObject(..)
            | S::Background(_) => ErrorCode::KafkaStorageError,
            S::ShuttingDown => ErrorCode::NotLeaderOrFollower,
            S::Producer(e) => e.code(),
            S::ProducerFenced { .. } => ErrorCode::ProducerFenced,
        }
    }
}

impl StorageError {
    /// The `error_message` a client gets. For the broker's own failures
    /// (catalog, object store, a corrupt object) that is a generic text:
    /// their details, file paths and SQL errors among them, are for the
    /// operator's log, not for a tenant.
    pub fn client_message(&self) -> String {
        use StorageError as S;
        match self {
            S::Catalog(_)
            | S::Objects(_)
            | S::ObjectClaimed(_)
            | S::CorruptObject(..)
            | S::Background(_) => {
                "the broker's storage failed (the cause is in the broker's log); retry".into()
            }
            other => other.to_string(),
        }
    }
}

impl From<sqlx::Error> for StorageError {
    fn from(e: sqlx::Error) -> Self {
        StorageError::Catalog(e.to_string())
    }
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        StorageError::Objects(e.to_string())
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
