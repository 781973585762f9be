//! One client connection.
//!
//! The reader decodes each frame and runs the ordered part of its handler
//! (for Produce: validation and queueing to the group commit, so a
//! partition's batches keep the order they were sent in). The rest, such as
//! waiting for the commit or a long-polling fetch, runs as its own task; the
//! writer sends responses strictly in request order, as Kafka clients
//! require.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use sluice_protocol::frame::{read_frame, FrameError};
use sluice_protocol::request::{decode_request, DecodeError};
use sluice_protocol::response::{encode_legacy_produce_refusal, legacy_produce_partitions};
use sluice_tenancy::Principal;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::context::BrokerContext;
use crate::handlers;
use crate::listener::Listener;
use crate::session::{SaslState, Session};

/// A connection over a TCP stream, or a TLS stream on the TLS listener.
pub struct Connection<S> {
    stream: S,
    ctx: Arc<BrokerContext>,
    session: Session,
    shutdown: watch::Receiver<bool>,
}

/// A response on its way: ready bytes, or a task that will produce them
/// (`None` for requests that get no response, like Produce with acks=0).
enum Outgoing {
    Ready(Bytes),
    Pending(JoinHandle<Option<Bytes>>),
}

impl<S: AsyncRead + AsyncWrite + Send + 'static> Connection<S> {
    pub fn new(
        stream: S,
        peer: SocketAddr,
        ctx: Arc<BrokerContext>,
        listener: Arc<Listener>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Connection {
            stream,
            ctx,
            session: Session::new(peer, listener),
            shutdown,
        }
    }

    /// Authenticated before the first request (by a client certificate):
    /// no SASL follows.
    pub fn authenticated(mut self, principal: Principal) -> Self {
        self.session.principal = Some(principal);
        self.session.sasl = SaslState::Done;
        self
    }

    pub async fn run(self) {
        let Connection {
            stream,
            ctx,
            mut session,
            mut shutdown,
        } = self;
        let peer = session.peer;
        metrics::gauge!("sluice_connections").increment(1.0);
        let (read_half, write_half) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Outgoing>(ctx.config.max_in_flight_per_connection);

        let writer = tokio::spawn(async move {
            let mut out = BufWriter::with_capacity(64 * 1024, write_half);
            loop {
                // Responses are batched into one write while more are ready;
                // before waiting for anything, what is buffered goes out.
                let item = match rx.try_recv() {
                    Ok(item) => item,
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        if out.flush().await.is_err() {
                            return;
                        }
                        match rx.recv().await {
                            Some(item) => item,
                            None => break,
                        }
                    }
                };
                let bytes = match item {
                    Outgoing::Ready(b) => Some(b),
                    Outgoing::Pending(task) => {
                        if !task.is_finished() && out.flush().await.is_err() {
                            return;
                        }
                        task.await.ok().flatten()
                    }
                };
                if let Some(b) = bytes {
                    if out.write_all(&b).await.is_err() {
                        return;
                    }
                    metrics::counter!("sluice_network_bytes_out_total").increment(b.len() as u64);
                }
            }
            let _ = out.flush().await;
        });

        let mut reader = BufReader::with_capacity(64 * 1024, read_half);
        loop {
            // A throttled connection is muted (KIP-219): no request is
            // read before the deadline.
            if let Some(until) = session.mute.deadline() {
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = shutdown.changed() => break,
                }
            }
            let frame = tokio::select! {
                f = read_frame(&mut reader, ctx.config.max_request_bytes) => f,
                _ = shutdown.changed() => break,
            };
            let frame = match frame {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(FrameError::Io(_)) => break,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                    metrics::counter!("sluice_bad_frames_total").increment(1);
                    break;
                }
            };
            metrics::counter!("sluice_network_bytes_in_total").increment(frame.len() as u64 + 4);
            let outgoing = match decode_request(frame.clone()) {
                Ok(req) => handlers::dispatch(&ctx, &mut session, req).await,
                Err(e) => match refusal(&e, &frame) {
                    Some(bytes) => {
                        tracing::info!(%peer, error = %e, "refused request");
                        handlers::Reply::Ready(Some(bytes))
                    }
                    None => {
                        tracing::warn!(%peer, error = %e, "closing connection: undecodable request");
                        metrics::counter!("sluice_bad_requests_total").increment(1);
                        break;
                    }
                },
            };
            let item = match outgoing {
                handlers::Reply::Ready(Some(b)) => Outgoing::Ready(b),
                handlers::Reply::Ready(None) if session.closing => break,
                handlers::Reply::Ready(None) => continue,
                handlers::Reply::Later(fut) => Outgoing::Pending(tokio::spawn(fut)),
                handlers::Reply::Close => {
                    // Debug: a misbehaving acks=0 producer would flood the log.
                    tracing::debug!(%peer, "closing connection: a request without acknowledgement (acks=0) failed");
                    break;
                }
            };
            if tx.send(item).await.is_err() || session.closing {
                break;
            }
        }
        drop(tx);
        let _ = writer.await;
        metrics::gauge!("sluice_connections").decrement(1.0);
    }
}

/// The answer to a request that could not be decoded, if Kafka gives one:
/// ApiVersions at an unknown version gets the version table with
/// UNSUPPORTED_VERSION (so the client can pick a version), and Produce v0-2
/// gets UNSUPPORTED_VERSION per partition. Everything else closes.
fn refusal(e: &DecodeError, frame: &[u8]) -> Option<Bytes> {
    use kafka_protocol::messages::ApiKey;
    match e {
        DecodeError::UnsupportedVersion {
            api_key: ApiKey::ApiVersions,
            correlation_id,
            ..
        } => Some(handlers::api_versions::unsupported_version(*correlation_id)),
        DecodeError::UnsupportedVersion {
            api_key: ApiKey::Produce,
            api_version,
            correlation_id,
            ..
        } if *api_version < sluice_protocol::versions::PRODUCE_MIN_DECODABLE
            && *api_version >= 0 =>
        {
            let parts = legacy_produce_partitions(frame)?;
            Some(encode_legacy_produce_refusal(
                *api_version,
                *correlation_id,
                &parts,
            ))
        }
        _ => None,
    }
}
