//! The Kafka listener: accepts connections until shutdown is signalled,
//! then stops accepting and lets connections finish their current request.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::connection::Connection;
use crate::context::BrokerContext;
use crate::listener::Listener;

pub struct Server {
    listener: TcpListener,
    ctx: Arc<BrokerContext>,
    settings: Arc<Listener>,
}

impl Server {
    /// Binds `addr`. An advertised port of 0 becomes the bound port, so
    /// tests can listen on port 0.
    pub async fn bind(
        addr: &str,
        ctx: Arc<BrokerContext>,
        mut settings: Listener,
    ) -> std::io::Result<Server> {
        let listener = TcpListener::bind(addr).await?;
        if settings.advertised_port == 0 {
            settings.advertised_port = listener.local_addr()?.port() as i32;
        }
        Ok(Server {
            listener,
            ctx,
            settings: Arc::new(settings),
        })
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
                        let (ctx, settings) = (self.ctx.clone(), self.settings.clone());
                        match settings.tls.clone() {
                            Some(tls) => {
                                tokio::spawn(crate::tls::serve(tls, stream, peer, ctx, settings, shutdown.clone()));
                            }
                            None => {
                                tokio::spawn(Connection::new(stream, peer, ctx, settings, shutdown.clone()).run());
                            }
                        }
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
