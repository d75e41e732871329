//! A webhook receiver over HTTPS on loopback with a certificate of its own (the registry's
//! configuration must allow private targets and trust [`Receiver::tls`]): what the tests of
//! notifications and the load harness's `--notify-bench` deliver to.
//!
//! Each subscription gets a path of its own (`/hook/<name>`). A receiver can fail requests on
//! purpose, and hold every request of a path, or about a document, until it is let go. It
//! takes one event a request (structured mode) and batches (`application/cloudevents-batch+json`)
//! alike; of a batch it notes the ledger index of every event, whether it keeps bodies or not.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use anyhow::Result;

use crate::harness::Tls;

/// One request the receiver was sent.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `<name>` of `/hook/<name>`.
    pub name: String,
    /// The `webhook-id` header.
    pub id: String,
    /// When it arrived, by the machine's clock.
    pub at: SystemTime,
    /// Every header and the body, unless the receiver keeps only the above.
    pub headers: Option<http::HeaderMap>,
    pub body: Option<Vec<u8>>,
    /// Whether the receiver took it (2xx) or failed it on purpose.
    pub taken: bool,
    /// For a batch: the ledger index of each of its events, in the order they came.
    pub batch: Option<Vec<u64>>,
}

impl Received {
    /// The body as JSON (null when not kept or not JSON).
    pub fn json(&self) -> serde_json::Value {
        self.body
            .as_deref()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(serde_json::Value::Null)
    }

    /// The entry's index, from the `webhook-id` (`<subscription>_<index>`).
    pub fn index(&self) -> Option<u64> {
        self.id.rsplit('_').next()?.parse().ok()
    }

    /// The ledger indexes the request told of: a batch's, or the one entry's.
    pub fn indexes(&self) -> Vec<u64> {
        match &self.batch {
            Some(batch) => batch.clone(),
            None => self.index().into_iter().collect(),
        }
    }
}

/// The ledger index of every event in a batch's body, found by each event's `id`
/// (`lading-entry-<index>`) without parsing the whole body (a benchmark's receiver keeps up).
fn batch_indexes(body: &[u8]) -> Vec<u64> {
    const ID: &[u8] = b"\"id\":\"lading-entry-";
    memchr::memmem::find_iter(body, ID)
        .filter_map(|at| {
            let digits = &body[at + ID.len()..];
            let end = digits.iter().position(|b| !b.is_ascii_digit())?;
            std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
        })
        .collect()
}

/// What the receiver holds and was told to do.
#[derive(Debug, Default)]
pub struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Requests still to be failed with 503.
    pub fail: AtomicUsize,
    /// Paths (`<name>`) and document references (the CloudEvent's `subject`) whose requests
    /// wait until they are let go.
    held: Mutex<HashSet<String>>,
    /// Requests waiting now.
    pub waiting: AtomicUsize,
    keep: bool,
}

/// The running receiver; stopped when dropped.
pub struct Receiver {
    pub state: Arc<ReceiverState>,
    pub tls: Tls,
    port: u16,
    handle: actix_web::dev::ServerHandle,
}

async fn hook(
    req: HttpRequest,
    name: web::Path<String>,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let at = SystemTime::now();
    let name = name.into_inner();
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let subject = if state.is_held_any() {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["subject"].as_str().map(ToOwned::to_owned))
    } else {
        None
    };
    if state.is_held(&name, subject.as_deref()) {
        state.waiting.fetch_add(1, Ordering::SeqCst);
        while state.is_held(&name, subject.as_deref()) {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        state.waiting.fetch_sub(1, Ordering::SeqCst);
    }
    let batch = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/cloudevents-batch+json"))
        .then(|| batch_indexes(&body));
    let fail = state
        .fail
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let (headers, body) = if state.keep {
        let mut headers = http::HeaderMap::new();
        for (name, value) in req.headers() {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_str().as_bytes()),
                http::HeaderValue::from_bytes(value.as_bytes()),
            ) {
                headers.insert(name, value);
            }
        }
        (Some(headers), Some(body.to_vec()))
    } else {
        (None, None)
    };
    state.lock().push(Received {
        name,
        id,
        at,
        headers,
        body,
        taken: !fail,
        batch,
    });
    if fail {
        HttpResponse::ServiceUnavailable().finish()
    } else {
        HttpResponse::NoContent().finish()
    }
}

impl ReceiverState {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Received>> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_held_any(&self) -> bool {
        !self.held().is_empty()
    }

    fn is_held(&self, name: &str, subject: Option<&str>) -> bool {
        let held = self.held();
        held.contains(name) || subject.is_some_and(|s| held.contains(s))
    }
}

impl Receiver {
    /// A receiver that keeps every request's headers and body (for tests).
    pub fn start() -> Result<Self> {
        Self::start_with(true, 1)
    }

    /// A receiver on `workers` threads; `keep`: whether headers and bodies are kept (a
    /// benchmark keeps only the id and the time).
    pub fn start_with(keep: bool, workers: usize) -> Result<Self> {
        use rustls::pki_types::pem::PemObject;
        let tls = Tls::new()?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(
            std::fs::read_to_string(tls.key_path())?.as_bytes(),
        )?;
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        let state = Arc::new(ReceiverState {
            keep,
            ..ReceiverState::default()
        });
        let data = web::Data::from(state.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let system = actix_web::rt::System::new();
            let run = system.block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .app_data(data.clone())
                        .app_data(web::PayloadConfig::new(16 << 20))
                        .route("/hook/{name}", web::post().to(hook))
                })
                .workers(workers.max(1))
                .bind_rustls_0_23(("127.0.0.1", 0), config)?;
                let port = server.addrs()[0].port();
                let server = server.run();
                let _ = tx.send((server.handle(), port));
                server.await
            });
            if let Err(e) = run {
                eprintln!("receiver: {e}");
            }
        });
        let (handle, port) = rx.recv_timeout(Duration::from_secs(30))?;
        Ok(Self {
            state,
            tls,
            port,
            handle,
        })
    }

    /// The callback URL of subscription `name`.
    pub fn url(&self, name: &str) -> String {
        format!("https://127.0.0.1:{}/hook/{name}", self.port)
    }

    /// Every request so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().clone()
    }

    /// How many requests came so far.
    pub fn count(&self) -> usize {
        self.state.lock().len()
    }

    /// The requests to `name` that were taken, in the order they came.
    pub fn taken(&self, name: &str) -> Vec<Received> {
        self.state
            .lock()
            .iter()
            .filter(|r| r.taken && r.name == name)
            .cloned()
            .collect()
    }

    /// Holds every request to path `name`, or about document `name`, until [`Receiver::release`].
    pub fn hold(&self, name: &str) {
        self.state.held().insert(name.to_owned());
    }

    pub fn release(&self, name: &str) {
        self.state.held().remove(name);
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("port", &self.port)
            .finish()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.state.held().clear();
        let handle = self.handle.clone();
        std::thread::spawn(move || actix_web::rt::System::new().block_on(handle.stop(false)));
    }
}
