//! The Kafka listener: accepts connections until shutdown is signalled,
//! then stops accepting and lets connections finish their current request.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::connection::Connection;
use crate::context::BrokerContext;

pub struct Server {
    listener: TcpListener,
    ctx: Arc<BrokerContext>,
}

impl Server {
    pub async fn bind(addr: &str, ctx: Arc<BrokerContext>) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Server { listener, ctx })
    }

    /// What the handlers share, for the control plane's views.
    pub fn context(&self) -> &Arc<BrokerContext> {
        &self.ctx
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let conn = Connection::new(stream, peer, self.ctx.clone(), shutdown.clone());
                        tokio::spawn(conn.run());
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                _ = shutdown.changed() => break,
            }
        }
    }
}
