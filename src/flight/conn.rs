//! Accepted connections that end their sessions: an anonymous client's session (keyed by its
//! connection) is dropped as soon as the connection closes, not an idle timeout later, so
//! clients that reconnect often do not fill the session limit.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::sessions::SessionStore;

/// A TCP connection that forgets its sessions when dropped.
pub struct TrackedConnection {
    inner: TcpStream,
    peer: Option<SocketAddr>,
    store: Arc<SessionStore>,
}

impl TrackedConnection {
    /// Wraps an accepted connection.
    pub fn new(inner: TcpStream, store: Arc<SessionStore>) -> Self {
        let peer = inner.peer_addr().ok();
        TrackedConnection { inner, peer, store }
    }
}

impl Drop for TrackedConnection {
    fn drop(&mut self) {
        if let Some(peer) = self.peer {
            self.store.remove_connection(&peer.to_string());
        }
    }
}

impl Connected for TrackedConnection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for TrackedConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
