//! Connections to an Iggy server with bounds on everything the SDK leaves unbounded: the SDK's
//! own reconnecting is off (a connection that drops fails the call, and the reader, writer or
//! coordinator decides what next), and every call runs under the table's `timeout.ms`. A
//! low-level `TcpClient` is used (no heartbeat task); it logs in when it connects.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use iggy::prelude::{
    AutoLogin, Client, IggyDuration, IggyError, TcpClient, TcpClientConfig,
    TcpClientReconnectionConfig,
};
use iggy_common::Credentials;
use secrecy::SecretString;

use crate::stream::StreamError;

/// Where a server is and who logs in.
#[derive(Clone)]
pub struct Endpoint {
    /// `host:port`.
    pub address: String,
    /// User name.
    pub user: String,
    /// Password.
    pub password: String,
    /// Bound of each call (and of connecting).
    pub timeout: Duration,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("user", &self.user)
            .field("password", &"***")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Whether retrying can help after this error (the connection, not the request, failed).
pub fn is_retryable(e: &IggyError) -> bool {
    matches!(
        e,
        IggyError::Disconnected
            | IggyError::CannotEstablishConnection
            | IggyError::NotConnected
            | IggyError::StaleClient
            | IggyError::TcpError
            | IggyError::EmptyResponse
            | IggyError::ConnectionClosed
    )
}

/// `what: <the SDK's message>`, naming `target`.
pub fn error(target: &str, what: &str, e: &IggyError) -> StreamError {
    let message = match e {
        IggyError::CannotEstablishConnection => {
            format!("{what}: server not reachable")
        }
        IggyError::InvalidCredentials => format!("{what}: wrong user name or password"),
        _ => format!("{what}: {e}"),
    };
    StreamError {
        target: target.to_string(),
        message: message.replace(['\n', '\r'], " "),
        retryable: is_retryable(e),
    }
}

/// Runs one SDK call under `timeout`; a call that does not answer in time is a (retryable)
/// error. The client of a call that timed out must not be used again (the SDK may still hold
/// its connection's lock).
pub async fn bounded<T>(
    target: &str,
    what: &str,
    timeout: Duration,
    call: impl Future<Output = Result<T, IggyError>>,
) -> Result<T, StreamError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(target, what, &e)),
        Err(_) => Err(StreamError::transient(
            target,
            format!("{what}: no answer within {} ms", timeout.as_millis()),
        )),
    }
}

/// A connected, logged-in client.
pub async fn connect(endpoint: &Endpoint, target: &str) -> Result<TcpClient, StreamError> {
    let config = TcpClientConfig {
        server_address: endpoint.address.clone(),
        auto_login: AutoLogin::Enabled(Credentials::UsernamePassword(
            endpoint.user.clone(),
            SecretString::from(endpoint.password.clone()),
        )),
        // no reconnects inside the SDK: a failed client is dropped and the caller decides
        // (its reconnect re-sends the last request, and behind a proxy that accepts and then
        // closes, connect → login → reconnect recursed until the stack overflowed)
        reconnection: TcpClientReconnectionConfig {
            enabled: false,
            max_retries: Some(0),
            interval: IggyDuration::from(Duration::from_millis(200)),
            reestablish_after: IggyDuration::from(Duration::from_millis(0)),
        },
        nodelay: true,
        ..TcpClientConfig::default()
    };
    let client = TcpClient::create(Arc::new(config))
        .map_err(|e| error(target, "cannot make a client", &e))?;
    // connecting logs in (a login that fails is this call's error)
    bounded(
        target,
        "cannot connect",
        endpoint.timeout,
        Client::connect(&client),
    )
    .await?;
    Ok(client)
}

/// Closes a client (bounded; errors do not matter any more).
pub async fn close(client: TcpClient, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, Client::disconnect(&client)).await;
}
