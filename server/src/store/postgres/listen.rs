//! Change notifications (PostgreSQL LISTEN), so replicas see changes at once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;
use tracing::{info, warn};

use super::{CHANNEL, db_error};

/// Listens for change notifications for as long as the store lives,
/// reconnecting with backoff; wakes `signal` on each one, and after every
/// (re)connection, since changes made while not listening went unheard.
pub(super) async fn listen(config: tokio_postgres::Config, tls: MakeRustlsConnect, signal: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    let mut was_down = false;
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let notified = signal.clone();
                let (closed, mut connection_closed) = tokio::sync::oneshot::channel::<()>();
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => notified.notify_one(),
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                    let _ = closed.send(());
                });
                if client.batch_execute(&format!("LISTEN {CHANNEL}")).await.is_ok() {
                    if std::mem::replace(&mut was_down, false) {
                        info!("listening for PostgreSQL change notifications again");
                    }
                    backoff = Duration::from_millis(100);
                    signal.notify_one();
                    let _ = (&mut connection_closed).await;
                }
                driver.abort();
            }
            Err(e) => {
                if !std::mem::replace(&mut was_down, true) {
                    warn!(error = %db_error(e), "cannot listen for PostgreSQL change notifications; polling meanwhile");
                }
            }
        }
        was_down = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
