//! The bank's state and the checks every request goes through.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use rustls_pki_types::pem::PemObject;
use stet_httpsig::{PublicKey, VerifyError, VerifyPolicy};
use stet_models::Dialect;
use time::OffsetDateTime;

use crate::check_faults::CheckFault;
use crate::data::BankData;
use crate::pki::Pki;
use crate::server::{Reply, Req};
use crate::{SandboxConfig, SandboxError, SandboxInfo};

/// The test PSU's login: PSU 1's other name (`psu-1`).
pub(crate) const PSU: &str = "psu-sandbox";

/// The login of PSU number `n` (from 1).
pub(crate) fn psu_name(n: usize) -> String {
    format!("psu-{n}")
}

/// The unattended-access window of PSD2 RTS art. 36(5): 4 calls per account and endpoint in it.
const UNATTENDED_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How a token was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grant {
    /// Authorization code: the PSU consented.
    Code,
    /// Client credentials: the TPP alone.
    ClientCredentials,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) grant: Grant,
    pub(crate) expires: Instant,
    /// The payment the PSU approved with this grant.
    pub(crate) payment: Option<String>,
    pub(crate) uses: u64,
    /// The PSU consent this token belongs to (code grants).
    pub(crate) consent: Option<u64>,
    /// The PSU whose accounts the token reaches (from 1; client-credentials tokens: 1).
    pub(crate) psu: usize,
}

impl Token {
    pub(crate) fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) payment: Option<String>,
    pub(crate) expires: Instant,
    /// The PSU who consented (`login_hint`).
    pub(crate) psu: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Refresh {
    pub(crate) client_id: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) payment: Option<String>,
    pub(crate) consent: Option<u64>,
    pub(crate) psu: usize,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Consent {
    pub(crate) calls: u64,
    pub(crate) revoked: bool,
}

/// A payment request as the bank holds it.
#[derive(Debug, Clone)]
pub(crate) struct Payment {
    pub(crate) resource: stet_models::PaymentRequestResource,
    pub(crate) total: rust_decimal::Decimal,
    /// RCVD, ACTC, ACSC, RJCT or CANC.
    pub(crate) status: &'static str,
    pub(crate) reason: Option<&'static str>,
    pub(crate) approved: bool,
    pub(crate) reads_since_confirmation: u32,
    pub(crate) created: OffsetDateTime,
}

#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) codes: HashMap<String, Code>,
    pub(crate) tokens: HashMap<String, Token>,
    pub(crate) refresh: HashMap<String, Refresh>,
    pub(crate) consents: Vec<Consent>,
    pub(crate) payments: HashMap<String, Payment>,
    pub(crate) next_payment: u64,
    /// Unattended calls per (account, endpoint, day).
    pub(crate) unattended: HashMap<(String, &'static str, time::Date), u32>,
    /// The last PSU consent forwarded with `PUT /consents`.
    pub(crate) access: Option<stet_models::Access>,
    /// Clients registered through dynamic registration, by client id.
    pub(crate) registrations: HashMap<String, crate::registration::Registered>,
    /// BPCE's registration tokens: the QWAC organisation each was issued to, and until when.
    pub(crate) registration_tokens: HashMap<String, (String, Instant)>,
    /// Every registration request received, as `GET /sandbox/registrations/requests` lists
    /// them: what a TPP really sent, for tests that check it against the spec.
    pub(crate) registration_requests: Vec<serde_json::Value>,
    /// Refresh tokens already exchanged (rotation: each is good once), to tell a replay from
    /// a token never issued.
    pub(crate) used_refresh: std::collections::HashSet<String>,
    /// Access and refresh tokens revoked through `POST /sandbox/revoke`.
    pub(crate) revoked: std::collections::HashSet<String>,
    /// When each (account or PSU, endpoint) was answered unattended, within the last 24 hours.
    pub(crate) unattended_answered:
        HashMap<(String, &'static str), std::collections::VecDeque<Instant>>,
    /// The counters of `GET /sandbox/stats` kept under this lock.
    pub(crate) counters: Counters,
}

/// Counters of `GET /sandbox/stats` (see [`crate::SandboxStats`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) unattended_peak: u64,
    pub(crate) unattended_refused: u64,
    pub(crate) refresh_grants: u64,
    pub(crate) refresh_reused: u64,
    pub(crate) tokens_issued: u64,
}

/// API requests being served now, and the most ever served at once, overall and per client.
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    now: u64,
    peak: u64,
    by_client: HashMap<String, (u64, u64)>,
}

/// One API request in flight: counted while it lives, uncounted when dropped, whether the
/// answer was sent or the client went away mid-request (the request's future is dropped).
pub(crate) struct InFlightGuard<'a> {
    state: &'a State,
    client: String,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        let mut f = self.state.in_flight();
        f.now = f.now.saturating_sub(1);
        if let Some((now, _)) = f.by_client.get_mut(&self.client) {
            *now = now.saturating_sub(1);
        }
    }
}

impl DataChange {
    fn apply(self, data: &mut BankData) {
        match self {
            DataChange::Advance(days, per_account) => {
                data.advance(days, per_account);
            }
            DataChange::Reconsent => {
                data.reconsent();
            }
        }
    }
}

/// The bank.
pub(crate) struct State {
    pub(crate) config: SandboxConfig,
    pub(crate) info: SandboxInfo,
    pub(crate) origin: String,
    pub(crate) prefix: String,
    /// The accounts and transactions: replaced as a whole (copy on write) when the sandbox
    /// advances its clock or the PSU consents again; each request reads one snapshot.
    pub(crate) data: std::sync::RwLock<Arc<BankData>>,
    /// The date PSUs' data was generated for, before any `advance`.
    pub(crate) first_day: time::Date,
    pub(crate) keys: HashMap<String, PublicKey>,
    pub(crate) qseal_pem: Vec<u8>,
    pub(crate) inner: Mutex<Inner>,
    pub(crate) api_requests: AtomicU64,
    pub(crate) payments_created: Arc<AtomicU64>,
    /// Client handshake signatures verified, by TLS version and scheme (`GET /sandbox/stats`).
    pub(crate) handshakes: crate::server::HandshakeLog,
    /// The Powens mock, when configured.
    pub(crate) powens: Option<crate::powens::Mock>,
    /// PSUs 2 to N: generated on first use (`data_of`), then changed like PSU 1's.
    pub(crate) others: Vec<std::sync::RwLock<Option<Arc<BankData>>>>,
    /// Every change made to the data so far (clock advances, re-consents), in order: a PSU
    /// generated later replays them, so that it looks as if it had been there all along. Its
    /// lock also orders generation against changes.
    pub(crate) changes: Mutex<Vec<DataChange>>,
    pub(crate) in_flight: Mutex<InFlight>,
}

/// A change to the bank's data, replayed on PSUs generated after it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DataChange {
    /// `advance(days, per_account)`.
    Advance(u32, usize),
    /// `reconsent()`.
    Reconsent,
}

/// The organizationIdentifier (2.5.4.97) in a certificate's subject.
pub(crate) fn organization_identifier(cert_der: &[u8]) -> Option<String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(cert_der).ok()?;
    let oid = der::asn1::ObjectIdentifier::new_unwrap("2.5.4.97");
    cert.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid)
        .and_then(|atv| String::from_utf8(atv.value.value().to_vec()).ok())
}

/// 32 random bytes as hex: tokens, codes, secrets.
pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc's system RNG; it fails only when the OS has no randomness at all.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}

fn reason_phrase(status: u16) -> &'static str {
    hyper::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

/// The HTTP status for a signature rejection: malformed input is 400, a signature that does not
/// authenticate the request is 401.
fn verify_status(e: &VerifyError) -> u16 {
    match e {
        VerifyError::Header(_)
        | VerifyError::SeveralSignatures(_)
        | VerifyError::MissingDigest
        | VerifyError::Digest(_)
        | VerifyError::MissingDate
        | VerifyError::BadDate(_)
        | VerifyError::SigningString(_) => 400,
        _ => 401,
    }
}

impl State {
    pub(crate) fn new(
        config: SandboxConfig,
        pki: &Pki,
        addr: SocketAddr,
        payments_created: Arc<AtomicU64>,
    ) -> Result<State, SandboxError> {
        let host = match addr.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let origin = format!("https://{host}:{}", addr.port());
        let version = match config.dialect {
            Dialect::V1_4 => "v1.4",
            Dialect::V1_5 => "v1.5",
        };
        let prefix = format!("/stet/psd2/{version}");
        let qseal_pem = pki.read("tpp-qseal.pem")?;
        let qseal =
            PublicKey::from_pem(&qseal_pem).map_err(|e| SandboxError::QSealC(e.to_string()))?;
        let qwac_pem = pki.read("tpp-qwac.pem")?;
        let qwac_der = rustls_pki_types::CertificateDer::pem_slice_iter(&qwac_pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| SandboxError::Qwac("no certificate in tpp-qwac.pem".into()))?;
        let client_id = organization_identifier(&qwac_der).ok_or_else(|| {
            SandboxError::Qwac("tpp-qwac.pem has no organizationIdentifier (2.5.4.97)".into())
        })?;
        let key_id = format!("{origin}/tpp/qseal.pem");
        let mut keys = HashMap::new();
        keys.insert(key_id.clone(), qseal.clone());
        keys.insert("tpp-qseal.pem".to_owned(), qseal.clone());
        if let Some(extra) = &config.key_id {
            keys.insert(extra.clone(), qseal);
        }
        let today = config
            .today
            .unwrap_or_else(|| OffsetDateTime::now_utc().date());
        let mut data = BankData::generate(config.seed, config.accounts, config.transactions, today);
        let others = (1..config.psus.max(1))
            .map(|_| std::sync::RwLock::new(None))
            .collect();
        crate::api::cache_transactions(&mut data, config.dialect);
        let powens = match &config.powens {
            Some(options) => Some(
                crate::powens::Mock::new(options.clone(), &origin, today)
                    .map_err(|e| SandboxError::Config(format!("the Powens mock: {e}")))?,
            ),
            None => None,
        };
        let info = SandboxInfo {
            api_base: format!("{origin}{prefix}"),
            authorize_url: format!("{origin}/authorize"),
            token_url: format!("{origin}/token"),
            ca: pki.path("ca.pem"),
            client_id,
            client_secret: random_hex(),
            key_id,
            redirect_uri: "http://127.0.0.1/callback".to_owned(),
            psu: PSU.to_owned(),
            qwac_cert: pki.path("tpp-qwac.pem"),
            qwac_key: pki.path("tpp-qwac.key"),
            qseal_cert: pki.path("tpp-qseal.pem"),
            qseal_key: pki.path("tpp-qseal.key"),
            dialect: match config.dialect {
                Dialect::V1_4 => "1.4",
                Dialect::V1_5 => "1.5",
            }
            .to_owned(),
            powens: powens.as_ref().map(|m| m.info.clone()),
        };
        Ok(State {
            config,
            info,
            origin,
            prefix,
            data: std::sync::RwLock::new(Arc::new(data)),
            first_day: today,
            keys,
            qseal_pem,
            inner: Mutex::new(Inner::default()),
            api_requests: AtomicU64::new(0),
            payments_created,
            handshakes: Default::default(),
            powens,
            others,
            changes: Mutex::new(Vec::new()),
            in_flight: Mutex::new(InFlight::default()),
        })
    }

    /// The login of PSU `psu`: PSU 1 keeps the sandbox's historical name (`psu-sandbox`).
    pub(crate) fn psu_login(&self, psu: usize) -> String {
        if psu <= 1 {
            self.info.psu.clone()
        } else {
            psu_name(psu)
        }
    }

    /// The number of PSUs.
    pub(crate) fn psus(&self) -> usize {
        self.others.len() + 1
    }

    /// The PSU a `login_hint` names: `psu-1` … `psu-N` (`psu-sandbox` is `psu-1` too).
    pub(crate) fn psu_of(&self, hint: &str) -> Option<usize> {
        if hint == PSU {
            return Some(1);
        }
        hint.strip_prefix("psu-")
            .filter(|n| !n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=self.psus()).contains(n))
    }

    /// The data of PSU `psu` (from 1) now, generated on first use.
    pub(crate) fn data_of(&self, psu: usize) -> Arc<BankData> {
        let Some(slot) = psu.checked_sub(2).and_then(|i| self.others.get(i)) else {
            return self.data();
        };
        if let Some(data) = slot.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return data.clone();
        }
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        let mut guard = slot.write().unwrap_or_else(|e| e.into_inner());
        if let Some(data) = guard.as_ref() {
            return data.clone();
        }
        let mut data = BankData::generate_for(
            self.config.seed,
            psu,
            self.config.accounts,
            self.config.transactions,
            self.first_day,
        );
        for change in changes.iter() {
            change.apply(&mut data);
        }
        crate::api::cache_transactions(&mut data, self.config.dialect);
        let data = Arc::new(data);
        *guard = Some(data.clone());
        data
    }

    /// Counts an API request in flight for `client` until the guard is dropped.
    pub(crate) fn enter(&self, client: String) -> InFlightGuard<'_> {
        let mut f = self.in_flight();
        f.now += 1;
        f.peak = f.peak.max(f.now);
        let (now, peak) = f.by_client.entry(client.clone()).or_default();
        *now += 1;
        *peak = (*peak).max(*now);
        drop(f);
        InFlightGuard {
            state: self,
            client,
        }
    }

    fn in_flight(&self) -> MutexGuard<'_, InFlight> {
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The counters of `GET /sandbox/stats`.
    pub(crate) fn stats(&self) -> crate::SandboxStats {
        let (peak, by_client) = {
            let f = self.in_flight();
            let by_client = f
                .by_client
                .iter()
                .map(|(client, (_, peak))| (client.clone(), *peak))
                .collect();
            (f.peak, by_client)
        };
        let c = self.lock().counters.clone();
        crate::SandboxStats {
            payment_requests_created: self.payments_created.load(Ordering::SeqCst),
            api_requests: self.api_requests.load(Ordering::SeqCst),
            unattended_peak: c.unattended_peak,
            unattended_refused: c.unattended_refused,
            peak_concurrency: peak,
            peak_concurrency_by_client: by_client,
            refresh_grants: c.refresh_grants,
            refresh_reused: c.refresh_reused,
            tokens_issued: c.tokens_issued,
            psus: self.psus() as u64,
            client_handshake_signatures: self
                .handshakes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Revokes every access and refresh token of PSU `psu` (`POST /sandbox/revoke`); gives how
    /// many there were.
    pub(crate) fn revoke(&self, psu: usize) -> u64 {
        let mut inner = self.lock();
        let access: Vec<String> = inner
            .tokens
            .iter()
            .filter(|(_, t)| t.psu == psu && t.grant == Grant::Code)
            .map(|(k, _)| k.clone())
            .collect();
        let refresh: Vec<String> = inner
            .refresh
            .iter()
            .filter(|(_, r)| r.psu == psu)
            .map(|(k, _)| k.clone())
            .collect();
        let n = (access.len() + refresh.len()) as u64;
        for token in access {
            inner.tokens.remove(&token);
            inner.revoked.insert(token);
        }
        for token in refresh {
            inner.refresh.remove(&token);
            inner.revoked.insert(token);
        }
        n
    }

    /// An unattended call answered 2xx: its time joins the (account or PSU, endpoint)'s last
    /// 24 hours, whose count may be a new peak.
    pub(crate) fn unattended_answered(&self, key: (String, &'static str)) {
        let now = Instant::now();
        let mut inner = self.lock();
        let times = inner.unattended_answered.entry(key).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= UNATTENDED_WINDOW)
        {
            times.pop_front();
        }
        times.push_back(now);
        let count = times.len() as u64;
        let peak = &mut inner.counters.unattended_peak;
        *peak = (*peak).max(count);
    }

    /// The bank's data now.
    pub(crate) fn data(&self) -> Arc<BankData> {
        self.data.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Changes the data of every PSU: `f` works on PSU 1's snapshot, copied if a request still
    /// reads it, and `change` is applied to the other PSUs generated so far and remembered for
    /// those generated later. Gives what `f` gave for PSU 1.
    pub(crate) fn change_data<R>(
        &self,
        change: DataChange,
        f: impl FnOnce(&mut BankData) -> R,
    ) -> R {
        let mut changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        changes.push(change);
        let result = {
            let mut guard = self.data.write().unwrap_or_else(|e| e.into_inner());
            let data = Arc::make_mut(&mut guard);
            let result = f(data);
            crate::api::cache_transactions(data, self.config.dialect);
            result
        };
        for slot in &self.others {
            let mut guard = slot.write().unwrap_or_else(|e| e.into_inner());
            if let Some(arc) = guard.as_mut() {
                let data = Arc::make_mut(arc);
                change.apply(data);
                crate::api::cache_transactions(data, self.config.dialect);
            }
        }
        result
    }

    /// `POST /sandbox/advance`: moves the data clock (see [`crate::RunningSandbox::advance`]).
    pub(crate) fn advance(&self, days: u32, per_account: usize) -> crate::data::Advanced {
        self.change_data(DataChange::Advance(days, per_account), |d| {
            d.advance(days, per_account)
        })
    }

    /// `POST /sandbox/reconsent`: new resource ids for every account.
    pub(crate) fn reconsent(&self) -> Vec<(String, String, String)> {
        self.change_data(DataChange::Reconsent, |d| d.reconsent())
    }

    fn time_travel(&self, req: &Req) -> Reply {
        if req.path == "/sandbox/reconsent" {
            let accounts: Vec<serde_json::Value> = self
                .reconsent()
                .into_iter()
                .map(|(iban, old, new)| serde_json::json!({"iban": iban, "previousResourceId": old, "resourceId": new}))
                .collect();
            return Reply::plain_json(200, &serde_json::json!({ "accounts": accounts }));
        }
        let body: serde_json::Value = if req.body.is_empty() {
            serde_json::json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    return self.error(400, &req.path, &format!("the body is not JSON: {e}"), None);
                }
            }
        };
        let field = |name: &str, default: u64, max: u64| -> Result<u64, Reply> {
            match body.get(name) {
                None => Ok(default),
                Some(v) => v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
                    self.error(
                        400,
                        &req.path,
                        &format!("`{name}` must be a whole number from 0 to {max}"),
                        None,
                    )
                }),
            }
        };
        let (days, per_account) = match (
            field("days", 1, 3650),
            field("transactions_per_account", 0, 100_000),
        ) {
            (Ok(d), Ok(k)) => (d, k),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        let done = self.advance(days as u32, per_account as usize);
        Reply::plain_json(
            200,
            &serde_json::json!({"added": done.added, "booked": done.booked, "today": self.data().today.to_string()}),
        )
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data: every update is one statement.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A STET `ErrorModel` (`Error400Model` for 400): `message` fits the schema's 140
    /// characters; `details` carries the whole reason.
    pub(crate) fn error(
        &self,
        status: u16,
        path: &str,
        message: &str,
        details: Option<&str>,
    ) -> Reply {
        let mut body = serde_json::json!({
            "timestamp": OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "status": status,
            "error": reason_phrase(status),
            "message": truncate(message, 140),
            "path": truncate(path, 140),
        });
        let full = details.unwrap_or(message);
        if full != body["message"] {
            body["details"] = serde_json::Value::String(full.to_owned());
        }
        Reply::json(status, body.to_string().into_bytes())
    }

    /// Every request: the route, the checks, the answer.
    pub(crate) async fn handle(self: &Arc<Self>, req: Req) -> Reply {
        let request_id = req
            .header("x-request-id")
            .filter(|_| !self.config.faults.breaks(CheckFault::NoRequestId))
            .map(str::to_owned);
        let req = crate::check_faults::substitute_peer(self, req);
        let mut reply = self.route(req).await;
        if let Some(id) = request_id {
            reply.headers.push(("X-Request-ID".to_owned(), id));
        }
        reply
    }

    async fn route(self: &Arc<Self>, req: Req) -> Reply {
        let path = req.path.clone();
        match (req.method.as_str(), path.as_str()) {
            ("GET" | "POST", "/authorize") => return self.authorize(&req),
            ("GET", "/tpp/qseal.pem") => {
                return Reply {
                    body: self.qseal_pem.clone(),
                    ..Reply::new(200)
                }
                .with_header("Content-Type", "application/x-pem-file");
            }
            // The sandbox's own counters, for tests that prove what the bank saw. Outside the
            // API base, so reading them is neither a counted API request nor subject to faults.
            ("GET", "/sandbox/stats") => {
                let stats = serde_json::to_value(self.stats()).unwrap_or_default();
                return Reply::plain_json(200, &stats);
            }
            // Revokes a PSU's tokens, as a PSU does from the bank's app: sandbox-only too.
            ("POST", "/sandbox/revoke") => return self.revoke_request(&req),
            // The bank's time and consents, for testing incremental syncs: sandbox-only, beside
            // the counters.
            ("POST", "/sandbox/advance" | "/sandbox/reconsent") => return self.time_travel(&req),
            // The bank's back office for registrations: what was received, and a person's
            // approval of updates recorded for approval by hand (BNP Paribas). Sandbox-only.
            ("GET", "/sandbox/registrations/requests") => {
                return self.registration_requests();
            }
            ("POST", "/sandbox/registrations/approve") => return self.approve_registrations(&req),
            // The same for the Powens mock, and what it holds (see `src/powens/advance.rs`).
            ("POST", "/sandbox/powens/advance" | "/sandbox/powens/state")
            | ("GET", "/sandbox/powens/transactions" | "/sandbox/powens/credentials") => {
                return match &self.powens {
                    Some(mock) => mock.sandbox(&req),
                    None => self.error(
                        404,
                        &path,
                        "the Powens mock is off: serve with --powens",
                        None,
                    ),
                };
            }
            _ => {}
        }
        // The Powens mock has no client certificates: it is reached before that check.
        if let Some(mock) = &self.powens
            && (path == crate::powens::PREFIX
                || path.starts_with(&format!("{}/", crate::powens::PREFIX)))
        {
            return mock.handle(&req).await;
        }
        let Some(peer) = req.peer.clone() else {
            // The token endpoint speaks OAuth: its refusals are RFC 6749 error answers.
            if path == "/token" {
                return crate::oauth::oauth_error(
                    401,
                    "invalid_client",
                    "no client certificate: connect with the TPP's QWAC (mutual TLS)",
                );
            }
            return self.error(
                401,
                &path,
                "no client certificate: connect with the TPP's QWAC (mutual TLS)",
                None,
            );
        };
        if let Some((variant, id)) = crate::registration::route(&path) {
            return self.registration(&req, variant, id);
        }
        if path == crate::registration::BPCE_TOKEN_PATH {
            let org = organization_identifier(&peer).unwrap_or_default();
            return self.registration_token(&req, &org);
        }
        if path == "/token" {
            if let Some(redirect) = self.config.faults.token_redirect() {
                return redirect;
            }
            if req.method != "POST" {
                return self.error(405, &path, "use POST for /token", None);
            }
            return self.token(&req, &peer);
        }
        let Some(rest) = path.strip_prefix(&self.prefix) else {
            return self.error(
                404,
                &path,
                &format!("no such endpoint: the API is under {}", self.prefix),
                None,
            );
        };
        let rest = rest.to_owned();
        // Counted in flight until the answer is made or the client goes away.
        let client = organization_identifier(&peer).unwrap_or_default();
        let _in_flight = self.enter(client);

        // Faults come first, as from a failing front end.
        let n = self.api_requests.fetch_add(1, Ordering::SeqCst) + 1;
        let decision = self.config.faults.decide(n);
        if let Some(delay) = decision.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(retry_after) = decision.too_many {
            return self
                .error(
                    429,
                    &path,
                    &format!("too many requests (fault: request {n})"),
                    None,
                )
                .with_header("Retry-After", retry_after.to_string());
        }
        if decision.unavailable {
            return self.error(
                503,
                &path,
                &format!("service unavailable (fault: request {n})"),
                None,
            );
        }

        let mut reply = match self.check_signature(&req) {
            Err(reply) => reply,
            Ok(()) => self.api(&req, &rest).await,
        };
        if let Some(key) = req.unattended.get()
            && (200..300).contains(&reply.status)
        {
            self.unattended_answered(key.clone());
        }
        decision.apply(&mut reply);
        crate::check_faults::shape(self, &req, &rest, &mut reply);
        reply
    }

    fn check_signature(&self, req: &Req) -> Result<(), Reply> {
        let mut request = stet_httpsig::Request::new(req.method.clone(), req.target.clone());
        for (name, value) in &req.headers {
            request.append_header(name.clone(), value.clone());
        }
        request.set_body(req.body.to_vec());
        let now = SystemTime::now();
        let policy = VerifyPolicy {
            require_psu_headers: !self.config.unsigned_psu_headers,
            ..VerifyPolicy::stet()
        };
        match stet_httpsig::verify_request(&request, &policy, &self.key_resolver(), now) {
            Ok(_) => Ok(()),
            Err(e) if crate::check_faults::signature_let_through(self, &request, &e, now) => Ok(()),
            Err(e) => {
                let full = e.to_string();
                let status = verify_status(&e);
                let short = match &e {
                    VerifyError::Mismatch { .. } => "the signature does not match the request; `details` has the signing string rebuilt here".to_owned(),
                    _ => full.clone(),
                };
                Err(self.error(status, &req.path, &short, Some(&full)))
            }
        }
    }

    /// The bearer token of a request, checked for `scope`; counts the use.
    pub(crate) fn bearer(&self, req: &Req, scope: &str) -> Result<Token, Reply> {
        let path = &req.path;
        let unauthorized = |msg: &str| {
            self.error(401, path, msg, None).with_header(
                "WWW-Authenticate",
                format!("Bearer error=\"invalid_token\", error_description=\"{msg}\""),
            )
        };
        let faults = &self.config.faults;
        let Some(auth) = req.header("authorization") else {
            if faults.breaks(CheckFault::AcceptNoToken) {
                return Ok(crate::check_faults::stand_in_token(self, scope));
            }
            return Err(unauthorized(
                "no Authorization header: send `Authorization: Bearer <access token>`",
            ));
        };
        let Some(token) = auth
            .strip_prefix("Bearer ")
            .or_else(|| auth.strip_prefix("bearer "))
        else {
            return Err(unauthorized(
                "the Authorization header is not `Bearer <access token>`",
            ));
        };
        let mut inner = self.lock();
        let Some(t) = inner.tokens.get(token.trim()).cloned() else {
            if inner.revoked.contains(token.trim()) {
                return Err(unauthorized(
                    "the access token was revoked: the PSU must consent again (/authorize)",
                ));
            }
            if faults.breaks(CheckFault::AcceptUnknownToken) {
                return Ok(crate::check_faults::stand_in_token(self, scope));
            }
            return Err(unauthorized("unknown access token"));
        };
        if Instant::now() >= t.expires && !faults.breaks(CheckFault::AcceptExpiredToken) {
            return Err(unauthorized("the access token has expired"));
        }
        if let Some(max) = self.config.faults.token_uses()
            && t.uses >= max
        {
            return Err(unauthorized(&format!(
                "the access token has expired (fault: after {max} uses)"
            )));
        }
        if let Some(consent) = t.consent
            && let Some(c) = inner.consents.get(consent as usize)
            && c.revoked
        {
            return Err(self.error(
                403,
                path,
                "the PSU's consent was revoked: run the authorization again",
                None,
            ));
        }
        let cert_client = req.peer.as_deref().and_then(|c| organization_identifier(c));
        // The token's client: the sandbox's own, or a registered one (the lock is held here).
        let org = if t.client_id == self.info.client_id {
            Some(self.info.client_id.clone())
        } else {
            inner.registrations.get(&t.client_id).map(|r| r.org.clone())
        };
        if cert_client.is_none() || cert_client != org {
            return Err(unauthorized(
                "the access token was issued to another client certificate (tokens are bound to the QWAC)",
            ));
        }
        if !t.has(scope) && !faults.breaks(CheckFault::IgnoreScopes) {
            return Err(self.error(
                403,
                path,
                &format!(
                    "the token was not granted the `{scope}` scope (it has: {})",
                    t.scopes.join(" ")
                ),
                None,
            ));
        }
        if let Some(tok) = inner.tokens.get_mut(token.trim()) {
            tok.uses += 1;
        }
        if let Some(consent) = t.consent {
            let revoke_after = self.config.faults.revoke_after();
            if let Some(c) = inner.consents.get_mut(consent as usize) {
                c.calls += 1;
                if revoke_after.is_some_and(|n| c.calls >= n) {
                    c.revoked = true;
                }
            }
        }
        Ok(t)
    }

    /// Applies the unattended-access limit: without `PSU-IP-Address`, 4 calls a day per account
    /// and endpoint.
    ///
    /// `account` is the account's resource id, or the PSU's login for endpoints of no account.
    pub(crate) fn psu_presence(
        &self,
        req: &Req,
        account: &str,
        endpoint: &'static str,
    ) -> Result<(), Reply> {
        if req.header("psu-ip-address").is_some() {
            return Ok(());
        }
        let day = OffsetDateTime::now_utc().date();
        let mut inner = self.lock();
        let count = inner
            .unattended
            .entry((account.to_owned(), endpoint, day))
            .or_insert(0);
        *count += 1;
        let count = *count;
        if count > 4 && !self.config.faults.breaks(CheckFault::UnlimitedUnattended) {
            inner.counters.unattended_refused += 1;
            let status = self.config.unattended_limit_status;
            let refusal = self.error(
                status,
                &req.path,
                &format!(
                    "the PSU is not present (no PSU-IP-Address): 4 calls a day per account and endpoint, this is call {count} on {endpoint} of {account}"
                ),
                None,
            );
            // A 403 comes as those banks send it: no Retry-After.
            return Err(if status == 429 {
                refusal.with_header("Retry-After", "86400")
            } else {
                refusal
            });
        }
        drop(inner);
        // Counted for `unattendedPeak` once answered 2xx (in `route`).
        let _ = req.unattended.set((account.to_owned(), endpoint));
        Ok(())
    }

    /// `POST /sandbox/revoke` with `{"psu": "psu-3"}`.
    fn revoke_request(&self, req: &Req) -> Reply {
        let body: serde_json::Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(e) => {
                return self.error(
                    400,
                    &req.path,
                    &format!("the body is not JSON ({e}): send {{\"psu\": \"psu-1\"}}"),
                    None,
                );
            }
        };
        let Some(name) = body.get("psu").and_then(|v| v.as_str()) else {
            return self.error(
                400,
                &req.path,
                "`psu` is missing or not a string: send {\"psu\": \"psu-1\"}",
                None,
            );
        };
        let Some(psu) = self.psu_of(name) else {
            return self.error(
                404,
                &req.path,
                &format!(
                    "no PSU `{name}`: this bank has psu-1 to psu-{} (--psus)",
                    self.psus()
                ),
                None,
            );
        };
        let revoked = self.revoke(psu);
        Reply::plain_json(200, &serde_json::json!({ "revoked": revoked }))
    }

    /// An href in the configured link style, for `rel` = path and query under the API base
    /// (starting with `/`).
    pub(crate) fn link(&self, rel: &str) -> String {
        match self.config.link_style {
            crate::LinkStyle::Url => format!("{}{}{rel}", self.origin, self.prefix),
            crate::LinkStyle::Path => format!("{}{rel}", self.prefix),
            crate::LinkStyle::Relative => rel.trim_start_matches('/').to_owned(),
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}
