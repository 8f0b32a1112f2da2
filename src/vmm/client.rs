//! A thin async client of Cloud Hypervisor's REST API over its Unix socket.
//!
//! One HTTP/1.1 connection per request: CH serves one request at a time and the API thread may
//! close a connection after answering, so reusing one buys nothing and costs error handling.
//! Every call is bounded by a timeout because CH's API thread blocks while a VM boots or shuts
//! down, and a hung VMM must never freeze the console.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use super::api::{
    DeviceConfig, PciDeviceInfo, RestoreConfig, VmCounters, VmInfo, VmRemoveDevice,
    VmSnapshotConfig, VmmPing,
};
use super::error::VmmError;

const API_PREFIX: &str = "/api/v1/";

/// A client of one VMM (one `cloud-hypervisor` process, one VM).
#[derive(Debug, Clone)]
pub struct ChClient {
    socket: PathBuf,
    timeout: Duration,
}

type Result<T> = std::result::Result<T, VmmError>;

impl ChClient {
    /// A client of the VMM listening on `socket`; every call gives up after `timeout`.
    pub fn new(socket: PathBuf, timeout: Duration) -> Self {
        ChClient { socket, timeout }
    }

    /// The same VMM with another timeout (a boot with VFIO devices may take longer than a ping).
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        ChClient {
            socket: self.socket.clone(),
            timeout,
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET vmm.ping`: the VMM's version; also tells that its API thread is alive.
    pub async fn ping(&self) -> Result<VmmPing> {
        self.get_json("vmm.ping").await
    }

    /// `PUT vm.create` with a `VmConfig` (built by the `vm` module, kept as JSON here).
    pub async fn create(&self, config: &serde_json::Value) -> Result<()> {
        self.put_json("vm.create", config).await.map(drop)
    }

    pub async fn boot(&self) -> Result<()> {
        self.put_empty("vm.boot").await
    }

    pub async fn pause(&self) -> Result<()> {
        self.put_empty("vm.pause").await
    }

    pub async fn resume(&self) -> Result<()> {
        self.put_empty("vm.resume").await
    }

    /// Stops the VM from the VMM side: the guest is not asked (see `power_button`).
    pub async fn shutdown(&self) -> Result<()> {
        self.put_empty("vm.shutdown").await
    }

    pub async fn reboot(&self) -> Result<()> {
        self.put_empty("vm.reboot").await
    }

    /// The graceful stop: an ACPI power-button press the guest may act on.
    pub async fn power_button(&self) -> Result<()> {
        self.put_empty("vm.power-button").await
    }

    pub async fn delete(&self) -> Result<()> {
        self.put_empty("vm.delete").await
    }

    pub async fn info(&self) -> Result<VmInfo> {
        self.get_json("vm.info").await
    }

    pub async fn counters(&self) -> Result<VmCounters> {
        self.get_json("vm.counters").await
    }

    /// Hot-plugs a VFIO device by its sysfs path. `None` when CH cold-added it (204, VM not
    /// booted yet), else the PCI address the guest sees.
    pub async fn add_device(&self, path: &str, id: Option<&str>) -> Result<Option<PciDeviceInfo>> {
        let body = DeviceConfig {
            path: path.to_owned(),
            id: id.map(str::to_owned),
        };
        let reply = self.put_json("vm.add-device", &body).await?;
        if reply.is_empty() {
            return Ok(None);
        }
        decode("vm.add-device", &reply).map(Some)
    }

    pub async fn remove_device(&self, id: &str) -> Result<()> {
        let body = VmRemoveDevice { id: id.to_owned() };
        self.put_json("vm.remove-device", &body).await.map(drop)
    }

    /// Snapshots a paused VM to `destination_url` (`file:///dir`).
    pub async fn snapshot(&self, destination_url: &str) -> Result<()> {
        let body = VmSnapshotConfig {
            destination_url: destination_url.to_owned(),
        };
        self.put_json("vm.snapshot", &body).await.map(drop)
    }

    /// Restores a snapshot into a VMM that has no VM yet.
    pub async fn restore(&self, source_url: &str) -> Result<()> {
        let body = RestoreConfig {
            source_url: source_url.to_owned(),
        };
        self.put_json("vm.restore", &body).await.map(drop)
    }

    /// Injects an NMI (`PUT vm.nmi`), e.g. to make a hung guest dump its state.
    pub async fn nmi(&self) -> Result<()> {
        self.put_empty("vm.nmi").await
    }

    /// Stops the VMM process itself (deleting the VM first, as CH does).
    pub async fn vmm_shutdown(&self) -> Result<()> {
        self.put_empty("vmm.shutdown").await
    }

    async fn get_json<T: DeserializeOwned>(&self, op: &'static str) -> Result<T> {
        let body = self.call(op, Method::GET, None).await?;
        decode(op, &body)
    }

    async fn put_empty(&self, op: &'static str) -> Result<()> {
        self.call(op, Method::PUT, None).await.map(drop)
    }

    async fn put_json<B: serde::Serialize + ?Sized>(
        &self,
        op: &'static str,
        body: &B,
    ) -> Result<Bytes> {
        let json = serde_json::to_vec(body).map_err(|source| VmmError::Encode { op, source })?;
        self.call(op, Method::PUT, Some(json)).await
    }

    /// One request on a fresh connection, bounded by the timeout. Returns the body of a 2xx
    /// reply (empty for 204); any other status becomes `VmmError::Api` with CH's causes.
    async fn call(&self, op: &'static str, method: Method, body: Option<Vec<u8>>) -> Result<Bytes> {
        match tokio::time::timeout(self.timeout, self.exchange(op, method, body)).await {
            Ok(result) => result,
            Err(_) => Err(VmmError::Timeout {
                op,
                after: self.timeout,
            }),
        }
    }

    async fn exchange(
        &self,
        op: &'static str,
        method: Method,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| VmmError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let http = |source| VmmError::Http { op, source };
        // Title-case header names, as curl and ch-remote send them: CH parses HTTP with its own
        // small server, and there is no reason to test its case handling.
        let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(http)?;

        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{API_PREFIX}{op}"))
            // CH's HTTP server does not need it, but HTTP/1.1 requires a Host header.
            .header(hyper::header::HOST, "localhost")
            .header(hyper::header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            // Only fails on an invalid method, URI or header, all of which are constants here.
            .map_err(|_| VmmError::api(op, 0, vec!["Invalid request".into()]))?;

        let response = async {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };

        // The connection future does the I/O and must be polled while the response is read;
        // it is not spawned so that a timeout drops it together with the request.
        let mut conn = std::pin::pin!(conn);
        let mut response = std::pin::pin!(response);
        let mut conn_done = false;
        let (status, body) = loop {
            tokio::select! {
                r = &mut response => break r.map_err(http)?,
                // An error here also fails `response`, which reports it.
                _ = &mut conn, if !conn_done => conn_done = true,
            }
        };

        if status.is_success() {
            Ok(body)
        } else {
            Err(VmmError::api(op, status.as_u16(), causes(status, &body)))
        }
    }
}

fn decode<T: DeserializeOwned>(op: &'static str, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|source| VmmError::Decode { op, source })
}

/// CH's error body: a JSON array of messages, outermost first. Anything else (a proxy, an older
/// VMM, plain text) is kept whole as one cause so no information is lost.
fn causes(status: StatusCode, body: &[u8]) -> Vec<String> {
    if let Ok(list) = serde_json::from_slice::<Vec<String>>(body) {
        // An anyhow error of CH may carry its stack backtrace (`vm.snapshot` on nested KVM):
        // frames of `<unknown>` tell the owner nothing and would bury the cause.
        return list
            .into_iter()
            .map(|c| match c.split_once("\n\nStack backtrace:") {
                Some((cause, _)) => cause.to_string(),
                None => c,
            })
            .collect();
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        let reason = status.canonical_reason().unwrap_or("Unknown status");
        vec![format!("HTTP {} {reason}", status.as_u16())]
    } else {
        vec![text.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_array_becomes_causes() {
        let c = causes(
            StatusCode::INTERNAL_SERVER_ERROR,
            br#"["Error from API","The VM could not boot","VM is not created"]"#,
        );
        assert_eq!(
            c,
            [
                "Error from API",
                "The VM could not boot",
                "VM is not created"
            ]
        );
    }

    #[test]
    fn a_stack_backtrace_in_a_cause_is_cut() {
        let body = br#"["Error from API","Could not get vCPU state GetNestedState(Invalid argument (os error 22)\n\nStack backtrace:\n   0: <unknown>\n  11: clone3)"]"#;
        assert_eq!(
            causes(StatusCode::INTERNAL_SERVER_ERROR, body),
            [
                "Error from API",
                "Could not get vCPU state GetNestedState(Invalid argument (os error 22)"
            ]
        );
    }

    #[test]
    fn text_body_is_one_cause_and_empty_body_names_the_status() {
        assert_eq!(
            causes(StatusCode::BAD_REQUEST, b"  bad things\n"),
            ["bad things"]
        );
        assert_eq!(causes(StatusCode::NOT_FOUND, b""), ["HTTP 404 Not Found"]);
        assert_eq!(causes(StatusCode::NOT_FOUND, br#"{"a":1}"#), [r#"{"a":1}"#]);
    }
}
