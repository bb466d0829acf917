//! PISP and CBPII: payment requests (build, create, read, confirm, cancel, wait) and funds
//! confirmations.

use std::time::{Duration, Instant};

use futures_util::stream::BoxStream;
use stet_models::{
    AccountIdentification, Amount, AmountType, Beneficiary, CategoryPurposeCode, ChargeBearerCode,
    ConfirmationResource, CreditTransferTransactionResource, ExecutionRule, FrequencyCode,
    HalAuthenticationRequest, HalCreditTransfertTransactions, HalPaymentCoverageReport,
    HalPaymentRequest, PartyIdentification, PaymentCoverageRequestResource, PaymentIdentification,
    PaymentInformationStatusCode, PaymentRequestResource, PaymentTypeInformation, Raw,
    RemittanceInformation, ServiceLevelCode, StandingOrderCharacteristics, StatusReasonInformation,
    StetDateTime, SupplementaryData,
};
use stet_transport::{Auth, Method};
use url::Url;

use crate::bank::{BankProfile, ConfirmationPath, Placement, StandingOrderForm};
use crate::client::{Call, Page, items, parse, segment};
use crate::{ClientError, StetClient};

/// One credit transfer of a payment request.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditTransfer {
    /// The payee's name.
    pub creditor_name: String,
    /// The payee's IBAN.
    pub creditor_iban: String,
    /// The amount: an exact decimal, never a float.
    pub amount: Amount,
    /// The currency (`EUR`).
    pub currency: String,
    /// Remittance information, unstructured lines (at most 140 characters in all for SEPA).
    pub remittance: Vec<String>,
    /// The end-to-end id carried to the payee (default: a fresh one).
    pub end_to_end_id: Option<String>,
}

impl CreditTransfer {
    /// A transfer of `amount` EUR to `creditor_name`'s `creditor_iban` with one line of
    /// remittance information.
    pub fn eur(
        creditor_name: impl Into<String>,
        creditor_iban: impl Into<String>,
        amount: Amount,
        remittance: impl Into<String>,
    ) -> Self {
        CreditTransfer {
            creditor_name: creditor_name.into(),
            creditor_iban: creditor_iban.into(),
            amount,
            currency: "EUR".to_owned(),
            remittance: vec![remittance.into()],
            end_to_end_id: None,
        }
    }
}

/// The schedule of a standing order.
#[derive(Debug, Clone, PartialEq)]
pub struct StandingOrder {
    /// The first execution.
    pub start: time::OffsetDateTime,
    /// The last execution, if any.
    pub end: Option<time::OffsetDateTime>,
    /// How often.
    pub frequency: FrequencyCode,
    /// What to do on a non-business day.
    pub execution_rule: ExecutionRule,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sepa,
    Instant,
    StandingOrder,
}

/// Builds a [`PaymentRequestResource`] as STET's table of usage asks for each instrument:
/// `serviceLevel` SEPA, `chargeBearer` SLEV, `localInstrument` INST for an instant transfer,
/// `categoryPurpose` CASH (a transfer for the account's owner) unless set, a requested
/// execution date, and the payee's name and IBAN.
///
/// Where the bank wants each part is its profile's `[payment]` table
/// ([`PaymentRules`](crate::bank::PaymentRules)): the payee (`beneficiary`) and the date on
/// every transfer (STET 1.5.0.43 requires both there) or once on the request when all
/// transfers share them (STET 1.4 allows it); a standing order's schedule as a
/// `standingOrderCharacteristics` object (1.5) or as `frequency`, `executionRule` and
/// `endDate` on its transfer (1.4), its first execution being the transfer's date; and the
/// report URLs, which some banks require.
///
/// ```
/// use stet_client::{CreditTransfer, PaymentRequestBuilder, bank::BankProfiles};
///
/// let bank = BankProfiles::builtin().get("sandbox").unwrap();
/// let request = PaymentRequestBuilder::instant_transfer("Example TPP")
///     .debtor_iban("FR7630004000031234567890143")
///     .transfer(CreditTransfer::eur(
///         "Marie Martin",
///         "FR7630006000011234567890189",
///         "12.10".parse().unwrap(),
///         "Facture 42",
///     ))
///     .build(&bank)
///     .unwrap();
/// assert_eq!(request.payment_type_information.local_instrument.as_deref(), Some("INST"));
/// assert_eq!(request.number_of_transactions, 1);
/// ```
#[derive(Debug, Clone)]
pub struct PaymentRequestBuilder {
    kind: Kind,
    initiating_party: String,
    debtor_iban: Option<String>,
    transfers: Vec<CreditTransfer>,
    standing_order: Option<StandingOrder>,
    category_purpose: Option<CategoryPurposeCode>,
    payment_information_id: Option<String>,
    requested_execution: Option<time::OffsetDateTime>,
    report_urls: Option<(String, String)>,
    accept_instant_downgrade: Option<bool>,
}

impl PaymentRequestBuilder {
    fn new(kind: Kind, initiating_party: impl Into<String>) -> Self {
        PaymentRequestBuilder {
            kind,
            initiating_party: initiating_party.into(),
            debtor_iban: None,
            transfers: Vec::new(),
            standing_order: None,
            category_purpose: None,
            payment_information_id: None,
            requested_execution: None,
            report_urls: None,
            accept_instant_downgrade: None,
        }
    }

    /// A SEPA credit transfer (SCT) initiated by `initiating_party` (the TPP's name).
    pub fn sepa_credit_transfer(initiating_party: impl Into<String>) -> Self {
        Self::new(Kind::Sepa, initiating_party)
    }

    /// A SEPA instant credit transfer (SCTInst: `localInstrument` INST). The bank may not
    /// downgrade it to a plain SCT unless [`accept_instant_downgrade`] says so.
    ///
    /// [`accept_instant_downgrade`]: PaymentRequestBuilder::accept_instant_downgrade
    pub fn instant_transfer(initiating_party: impl Into<String>) -> Self {
        Self::new(Kind::Instant, initiating_party)
    }

    /// A standing order: one transfer, repeated on `schedule`.
    pub fn standing_order(initiating_party: impl Into<String>, schedule: StandingOrder) -> Self {
        let mut b = Self::new(Kind::StandingOrder, initiating_party);
        b.standing_order = Some(schedule);
        b
    }

    /// The account to debit (otherwise the PSU picks it at the bank).
    #[must_use]
    pub fn debtor_iban(mut self, iban: impl Into<String>) -> Self {
        self.debtor_iban = Some(iban.into());
        self
    }

    /// Adds a transfer.
    #[must_use]
    pub fn transfer(mut self, transfer: CreditTransfer) -> Self {
        self.transfers.push(transfer);
        self
    }

    /// The category purpose (default CASH; DVPM for a payment to a merchant).
    #[must_use]
    pub fn category_purpose(mut self, code: CategoryPurposeCode) -> Self {
        self.category_purpose = Some(code);
        self
    }

    /// The TPP's id of the request (default: a fresh one).
    #[must_use]
    pub fn payment_information_id(mut self, id: impl Into<String>) -> Self {
        self.payment_information_id = Some(id.into());
        self
    }

    /// When to execute (default: now).
    #[must_use]
    pub fn requested_execution(mut self, at: time::OffsetDateTime) -> Self {
        self.requested_execution = Some(at);
        self
    }

    /// Where the bank sends the PSU back after approving or refusing.
    #[must_use]
    pub fn report_urls(
        mut self,
        successful: impl Into<String>,
        unsuccessful: impl Into<String>,
    ) -> Self {
        self.report_urls = Some((successful.into(), unsuccessful.into()));
        self
    }

    /// Whether an instant transfer may become a plain SEPA transfer.
    #[must_use]
    pub fn accept_instant_downgrade(mut self, accept: bool) -> Self {
        self.accept_instant_downgrade = Some(accept);
        self
    }

    /// The request, with date-times in `bank`'s format.
    pub fn build(self, bank: &BankProfile) -> Result<PaymentRequestResource, ClientError> {
        let invalid = |m: &str| Err(ClientError::InvalidRequest(m.to_owned()));
        if self.transfers.is_empty() {
            return invalid("a payment request needs at least one transfer");
        }
        if self.kind == Kind::StandingOrder && self.transfers.len() != 1 {
            return invalid("a standing order has exactly one transfer");
        }
        for t in &self.transfers {
            if t.amount.decimal().is_zero() || t.amount.decimal().is_sign_negative() {
                return invalid("every amount must be positive");
            }
            if t.creditor_name.trim().is_empty() || t.creditor_iban.trim().is_empty() {
                return invalid("every transfer needs the payee's name and IBAN");
            }
        }
        let now = time::OffsetDateTime::now_utc();
        let stamp = |t: time::OffsetDateTime| -> Result<StetDateTime, ClientError> {
            bank.format_datetime(t)
                .parse()
                .map_err(|e| ClientError::InvalidRequest(format!("date-time: {e}")))
        };
        let beneficiary = |t: &CreditTransfer| Beneficiary {
            creditor: PartyIdentification {
                name: t.creditor_name.clone(),
                ..PartyIdentification::default()
            },
            creditor_account: Some(AccountIdentification {
                iban: Some(t.creditor_iban.clone()),
                ..AccountIdentification::default()
            }),
            ..Beneficiary::default()
        };
        let rules = &bank.payment;
        if rules.report_urls_required && self.report_urls.is_none() {
            return Err(ClientError::InvalidRequest(format!(
                "{} requires supplementaryData.successfulReportUrl on a payment request: give \
                 the URL it sends the PSU back to (report_urls)",
                bank.display_name
            )));
        }
        let first = &self.transfers[0];
        let one_payee = self.transfers.iter().all(|t| {
            t.creditor_iban == first.creditor_iban && t.creditor_name == first.creditor_name
        });
        // Where the payee and the date go is the bank's dialect (its profile's [payment]
        // table): STET 1.5.0.43 requires both on every transfer; 1.4 allows either level.
        let beneficiary_on_payment = rules.beneficiary == Placement::PaymentLevel && one_payee;
        let schedule = match (&self.standing_order, self.kind) {
            (Some(s), Kind::StandingOrder) => Some(s),
            _ => None,
        };
        // A standing order's first execution is its transfer's date, in both forms.
        let date_on_payment =
            rules.requested_execution_date == Placement::PaymentLevel && schedule.is_none();
        let execution = match schedule {
            Some(s) => stamp(s.start)?,
            None => stamp(self.requested_execution.unwrap_or(now))?,
        };
        let mut transactions = Vec::with_capacity(self.transfers.len());
        for (i, t) in self.transfers.iter().enumerate() {
            let id = short_id();
            let mut transaction = CreditTransferTransactionResource {
                payment_id: PaymentIdentification {
                    instruction_id: format!("I{}-{}", id, i + 1),
                    end_to_end_id: Some(
                        t.end_to_end_id.clone().unwrap_or_else(|| format!("E{id}")),
                    ),
                    ..PaymentIdentification::default()
                },
                requested_execution_date: (!date_on_payment).then_some(execution),
                instructed_amount: Some(AmountType {
                    amount: t.amount,
                    currency: t.currency.clone(),
                }),
                beneficiary: (!beneficiary_on_payment).then(|| beneficiary(t)),
                remittance_information: Some(RemittanceInformation {
                    unstructured: t.remittance.clone(),
                    structured: Vec::new(),
                }),
                ..CreditTransferTransactionResource::default()
            };
            if let Some(s) = schedule {
                let end = s.end.map(stamp).transpose()?;
                match rules.standing_order {
                    StandingOrderForm::Characteristics => {
                        transaction.standing_order_characteristics =
                            Some(StandingOrderCharacteristics {
                                start_date: stamp(s.start)?,
                                end_date: end,
                                execution_rule: s.execution_rule.clone(),
                                frequency: s.frequency.clone(),
                            });
                    }
                    StandingOrderForm::Flat => {
                        transaction.end_date = end;
                        transaction.execution_rule = Some(s.execution_rule.clone());
                        transaction.frequency = Some(s.frequency.clone());
                    }
                }
            }
            transactions.push(transaction);
        }
        let (ok, ko) = self.report_urls.clone().unzip();
        Ok(PaymentRequestResource {
            resource_id: None,
            payment_information_id: self
                .payment_information_id
                .clone()
                .unwrap_or_else(|| format!("P{}", short_id())),
            beneficiary: beneficiary_on_payment.then(|| beneficiary(first)),
            batch_booking: None,
            creation_date_time: stamp(now)?,
            number_of_transactions: transactions.len() as i64,
            initiating_party: PartyIdentification {
                name: self.initiating_party.clone(),
                ..PartyIdentification::default()
            },
            accept_debtor_account_change: None,
            accept_charge_handling_change: None,
            accept_instant_payment_downgrade: match self.kind {
                Kind::Instant => Some(self.accept_instant_downgrade.unwrap_or(false)),
                _ => None,
            },
            payment_type_information: PaymentTypeInformation {
                instruction_priority: None,
                service_level: Some(ServiceLevelCode::Sepa),
                local_instrument: (self.kind == Kind::Instant).then(|| "INST".to_owned()),
                category_purpose: Some(
                    self.category_purpose
                        .clone()
                        .unwrap_or(CategoryPurposeCode::Cash),
                ),
            },
            debtor: None,
            debtor_account: self.debtor_iban.clone().map(|iban| AccountIdentification {
                iban: Some(iban),
                ..AccountIdentification::default()
            }),
            debtor_agent: None,
            charge_bearer: Some(ChargeBearerCode::Slev),
            payment_information_status: None,
            status_reason_information: None,
            funds_availability: None,
            booking: None,
            credit_transfer_transaction: transactions,
            supplementary_data: SupplementaryData {
                accepted_authentication_approach: vec!["REDIRECT".into()],
                successful_report_url: ok,
                unsuccessful_report_url: ko,
                ..SupplementaryData::default()
            },
            requested_execution_date: date_on_payment.then_some(execution),
            purpose: None,
            ultimate_creditor: None,
        })
    }
}

/// A 20-character id from a v4 UUID, within every STET id pattern.
fn short_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..20].to_owned()
}

/// A payment request the bank has created.
#[derive(Debug, Clone)]
pub struct CreatedPaymentRequest {
    /// The bank's resource id of the request.
    pub id: String,
    /// Where the PSU approves it (`_links.consentApproval`): open it in their browser, with
    /// the OAuth parameters the bank wants for a redirect flow.
    pub consent_approval: Option<Url>,
    /// The `Location` header, as sent.
    pub location: Option<String>,
    /// The response body, as read (fields in an unexpected shape are kept as received in
    /// it, or left out when the body could not be read at all).
    pub response: HalAuthenticationRequest,
    /// The response body as received (`null` when it was not JSON).
    pub json: serde_json::Value,
}

/// Whether a payment request's status is final: ACSC, ACCP, ACWC, RJCT, CANC or PART.
pub fn is_final_status(status: &PaymentInformationStatusCode) -> bool {
    use PaymentInformationStatusCode as S;
    matches!(
        status,
        S::Acsc | S::Accp | S::Acwc | S::Rjct | S::Canc | S::Part
    )
}

/// The status of a payment request as read, and its reason.
pub fn payment_status(
    hal: &HalPaymentRequest,
) -> (
    Option<&PaymentInformationStatusCode>,
    Option<&StatusReasonInformation>,
) {
    let p = &hal.payment_request;
    let reason = p.status_reason_information.as_ref().or_else(|| {
        p.credit_transfer_transaction
            .iter()
            .find_map(|t| t.status_reason_information.as_ref())
    });
    (p.payment_information_status.as_ref(), reason)
}

fn rejected(id: &str, hal: &HalPaymentRequest) -> Option<ClientError> {
    match payment_status(hal) {
        (Some(PaymentInformationStatusCode::Rjct), reason) => Some(ClientError::PaymentRejected {
            id: id.to_owned(),
            status: "RJCT".to_owned(),
            reason: reason.map(|r| r.as_str().to_owned()),
        }),
        _ => None,
    }
}

impl StetClient {
    fn pisp(&self) -> Auth {
        Auth::ClientCredentials(vec![self.bank().scopes.pisp.clone()])
    }

    /// Creates a payment request (`POST /payment-requests`) with a client-credentials token.
    /// Never resent: if the answer is lost, the error says so and how to check.
    pub async fn create_payment_request(
        &self,
        request: &PaymentRequestResource,
    ) -> Result<CreatedPaymentRequest, ClientError> {
        let mut call = Call::new(Method::POST, "payment-requests".to_owned(), self.pisp());
        call.body = Some(self.body(request)?);
        let response = self.execute(&call).await?.ok_or(ClientError::NoPaymentId)?;
        // The payment request now exists at the bank: what identifies it (the Location, an id
        // in the body) and where the PSU approves it are all that is needed from the answer.
        // Nothing else in it, whatever its shape, may cost the id.
        let json = serde_json::from_slice::<serde_json::Value>(&response.body).ok();
        let body = match parse::<HalAuthenticationRequest>("POST payment-requests", &response.body)
        {
            Ok(body) => body,
            Err(e) => {
                tracing::info!(
                    "the answer to the payment request's creation is not read in full ({e}); \
                     kept as received"
                );
                HalAuthenticationRequest::default()
            }
        };
        if let Some(applied) = body
            .applied_authentication_approach
            .as_ref()
            .and_then(|a| a.unexpected())
        {
            tracing::info!(
                "the bank wrote appliedAuthenticationApproach as {}, not as a code; kept as \
                 received",
                applied.get()
            );
        }
        let location = response
            .headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let id = location
            .as_deref()
            .and_then(id_from_location)
            .or_else(|| {
                // Some banks put the id in the body instead.
                json.as_ref().and_then(|v| {
                    v.get("paymentRequestResourceId")
                        .or_else(|| v.get("resourceId"))
                        .and_then(|v| v.as_str().map(str::to_owned))
                })
            })
            .ok_or(ClientError::NoPaymentId)?;
        let href = body
            .links
            .as_ref()
            .and_then(|l| l.consent_approval.as_ref())
            .map(|l| l.href.clone())
            .or_else(|| {
                json.as_ref()
                    .and_then(|v| v.pointer("/_links/consentApproval/href"))
                    .and_then(|v| v.as_str().map(str::to_owned))
            });
        let consent_approval = href.and_then(|h| response.url.join(&h).ok());
        Ok(CreatedPaymentRequest {
            id,
            consent_approval,
            location,
            response: body,
            json: json.unwrap_or_default(),
        })
    }

    /// Reads a payment request (`GET /payment-requests/{id}`).
    pub async fn payment_request(&self, id: &str) -> Result<HalPaymentRequest, ClientError> {
        let target = format!("payment-requests/{}", segment(id));
        self.fetch(&Call::new(Method::GET, target, self.pisp()))
            .await
    }

    /// Confirms a payment request the PSU approved (`POST /payment-requests/{id}/confirmation`
    /// or `/o-confirmation`, as the bank's profile says) with `auth`: the PSU's approval token
    /// (`Auth::Consent(key)`), or a client-credentials one where the bank allows it (always at
    /// `/confirmation`: `/o-confirmation` is for the PSU's authorization-code token).
    ///
    /// `Ok(None)` when the bank has no confirmation step (its profile says `none`): poll with
    /// [`wait_for_final_status`](StetClient::wait_for_final_status). A rejection (RJCT) is
    /// [`ClientError::PaymentRejected`].
    pub async fn confirm_payment_request(
        &self,
        id: &str,
        auth: Auth,
    ) -> Result<Option<HalPaymentRequest>, ClientError> {
        let seg = match (self.bank().confirmation_path, &auth) {
            (ConfirmationPath::None, _) => return Ok(None),
            // `/o-confirmation` is where pre-1.5 banks take the PSU's authorization-code
            // approval (woob's STET browser); a confirmation with the TPP's own token goes to
            // `/confirmation`, as both 1.4.0.47 and 1.5.0.43 define it.
            (ConfirmationPath::OConfirmation, Auth::ClientCredentials(_)) => "/confirmation",
            (path, _) => path.segment().unwrap_or("/confirmation"),
        };
        let target = format!("payment-requests/{}{seg}", segment(id));
        let mut call = Call::new(Method::POST, target, auth);
        if self.bank().payment.confirmation_body {
            call.body = Some(self.body(&ConfirmationResource::default())?);
        }
        let what = format!("POST payment-requests/{id}{seg}");
        let hal: Option<HalPaymentRequest> = match self.execute(&call).await? {
            Some(r) if !r.body.is_empty() => Some(parse(&what, &r.body)?),
            _ => None,
        };
        if let Some(e) = hal.as_ref().and_then(|h| rejected(id, h)) {
            return Err(e);
        }
        Ok(hal)
    }

    /// Cancels a payment request (`PUT /payment-requests/{id}` with status CANC and `reason`:
    /// DS02, DUPL, FRAD or TECH). The request is read first and sent back as the bank wrote
    /// it, with the status and reason changed.
    ///
    /// STET 1.4 has no CANC: its cancellation sets the status to RJCT, and its reason codes
    /// know DS02 (the PSU ordered it) and FRAD but not DUPL or TECH, which are refused here
    /// before anything is sent.
    pub async fn cancel_payment_request(
        &self,
        id: &str,
        reason: StatusReasonInformation,
    ) -> Result<(), ClientError> {
        if !self.bank().payment.cancellation {
            return Err(ClientError::Unsupported {
                operation: "PUT /payment-requests/{id} (cancellation)",
                bank: self.bank().name.clone(),
                why: "the bank's API offers no cancellation of a payment request: the PSU \
                      cancels it in their online banking"
                    .to_owned(),
            });
        }
        let status = match self.bank().dialect {
            crate::bank::Dialect::V1_4 => {
                if !matches!(
                    reason,
                    StatusReasonInformation::Ds02 | StatusReasonInformation::Frad
                ) {
                    return Err(ClientError::InvalidRequest(format!(
                        "a STET 1.4 bank takes a cancellation's reason as DS02 or FRAD, not {}",
                        reason.as_str()
                    )));
                }
                "RJCT"
            }
            _ => "CANC",
        };
        let current = self.payment_request(id).await?;
        let mut json = current.payment_request.to_value();
        let Some(object) = json.as_object_mut() else {
            return Err(ClientError::UnreadableBankData {
                what: format!("GET payment-requests/{id}"),
                message: "paymentRequest is not an object".to_owned(),
            });
        };
        object.insert("paymentInformationStatus".into(), status.into());
        object.insert("statusReasonInformation".into(), reason.as_str().into());
        let target = format!("payment-requests/{}", segment(id));
        let mut call = Call::new(Method::PUT, target, self.pisp());
        call.body = Some(
            serde_json::to_vec(&json)
                .map_err(|e| ClientError::InvalidRequest(format!("cannot write the body: {e}")))?,
        );
        self.execute(&call).await.map(drop)
    }

    /// The transfers of a payment request with their own status, page by page
    /// (`GET /payment-requests/{id}/transactions`, STET 1.5 and later).
    pub fn payment_transaction_pages(
        &self,
        id: &str,
    ) -> BoxStream<'static, Result<Page<CreditTransferTransactionResource>, ClientError>> {
        if let Err(e) = self.require_v15("payment request transactions") {
            return Box::pin(futures_util::stream::once(async move { Err(e) }));
        }
        let target = format!("payment-requests/{}/transactions", segment(id));
        self.pages::<HalCreditTransfertTransactions>(Call::new(Method::GET, target, self.pisp()))
    }

    /// The transfers of a payment request, one at a time.
    pub fn payment_transactions(
        &self,
        id: &str,
    ) -> BoxStream<'static, Result<Raw<CreditTransferTransactionResource>, ClientError>> {
        items(self.payment_transaction_pages(id))
    }

    /// Reads the payment request every `interval` until its status is final
    /// ([`is_final_status`]), for at most `timeout`. RJCT is [`ClientError::PaymentRejected`];
    /// still pending at the deadline is [`ClientError::PaymentPending`].
    pub async fn wait_for_final_status(
        &self,
        id: &str,
        timeout: Duration,
        interval: Duration,
    ) -> Result<HalPaymentRequest, ClientError> {
        let started = Instant::now();
        let interval = interval.max(Duration::from_millis(10));
        loop {
            let hal = self.payment_request(id).await?;
            if let Some(e) = rejected(id, &hal) {
                return Err(e);
            }
            let status = payment_status(&hal).0.cloned();
            if status.as_ref().is_some_and(is_final_status) {
                return Ok(hal);
            }
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(ClientError::PaymentPending {
                    id: id.to_owned(),
                    status: status
                        .map_or_else(|| "(no status)".to_owned(), |s| s.as_str().to_owned()),
                    waited,
                });
            }
            tokio::time::sleep(interval.min(timeout - waited)).await;
        }
    }

    // ---------------------------------------------------------------------------------------
    // CBPII

    /// Asks whether an account can cover an amount (`POST /funds-confirmations`) with a
    /// client-credentials token for the bank's CBPII scope (`cbpii`, `piisp` in 1.4), and the
    /// headers the bank's profile adds. A bank whose profile requires `payee` gets none
    /// without it: [`ClientError::InvalidRequest`].
    pub async fn funds_confirmation(
        &self,
        request: &PaymentCoverageRequestResource,
    ) -> Result<HalPaymentCoverageReport, ClientError> {
        let rules = &self.bank().funds_confirmation;
        if rules.payee_required && request.payee.as_deref().is_none_or(|p| p.trim().is_empty()) {
            return Err(ClientError::InvalidRequest(format!(
                "{} requires `payee` (the merchant the check is for) on a funds confirmation",
                self.bank().display_name
            )));
        }
        let auth = Auth::ClientCredentials(vec![self.bank().scopes.cbpii.clone()]);
        let mut call = Call::new(Method::POST, "funds-confirmations".to_owned(), auth);
        call.body = Some(self.body(request)?);
        call.headers = rules
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        self.fetch(&call).await
    }
}

/// A funds-confirmation request for `amount` `currency` on the account `iban`, with a fresh id.
pub fn funds_confirmation_request(
    iban: impl Into<String>,
    amount: Amount,
    currency: impl Into<String>,
) -> PaymentCoverageRequestResource {
    PaymentCoverageRequestResource {
        payment_coverage_request_id: format!("F{}", short_id()),
        payee: None,
        instructed_amount: Some(AmountType {
            amount,
            currency: currency.into(),
        }),
        account_id: AccountIdentification {
            iban: Some(iban.into()),
            ..AccountIdentification::default()
        },
    }
}

/// The last path segment of a `Location`, percent-decoded.
fn id_from_location(location: &str) -> Option<String> {
    let path = location.split(['?', '#']).next()?;
    let last = path.trim_end_matches('/').rsplit('/').next()?;
    let decoded: String =
        url::form_urlencoded::parse(format!("x={}", last.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())?;
    (!decoded.is_empty()).then_some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bank::BankProfiles;

    fn transfer(name: &str, iban: &str) -> CreditTransfer {
        CreditTransfer::eur(name, iban, "12.10".parse().unwrap(), "Facture 42")
    }

    fn json(request: &PaymentRequestResource, bank: &BankProfile) -> serde_json::Value {
        let dialect = match bank.dialect {
            crate::bank::Dialect::V1_4 => stet_models::Dialect::V1_4,
            _ => stet_models::Dialect::V1_5,
        };
        stet_models::to_json_value(request, dialect).unwrap()
    }

    #[test]
    fn the_payee_and_the_date_go_where_the_profile_says() {
        let banks = BankProfiles::builtin();
        let one = |bank: &BankProfile| {
            let r = PaymentRequestBuilder::sepa_credit_transfer("TPP")
                .transfer(transfer("Marie Martin", "FR7630006000011234567890189"))
                .report_urls("https://tpp.example/ok", "https://tpp.example/ko")
                .build(bank)
                .unwrap();
            json(&r, bank)
        };
        // 1.5.0.43 requires both on every transfer, even with one payee.
        let v15 = one(&banks.get("generic-1.5").unwrap());
        let t = &v15["creditTransferTransaction"][0];
        assert_eq!(t["beneficiary"]["creditor"]["name"], "Marie Martin");
        assert!(t["requestedExecutionDate"].is_string());
        assert!(v15.get("beneficiary").is_none() && v15.get("requestedExecutionDate").is_none());
        // 1.4: once on the request.
        let v14 = one(&banks.get("generic-1.4").unwrap());
        assert_eq!(v14["beneficiary"]["creditor"]["name"], "Marie Martin");
        assert!(v14["requestedExecutionDate"].is_string());
        let t = &v14["creditTransferTransaction"][0];
        assert!(t.get("beneficiary").is_none() && t.get("requestedExecutionDate").is_none());
        // Crédit Agricole: the payee on the request, the date on each transfer.
        let ca = one(&banks.get("credit-agricole").unwrap());
        assert_eq!(ca["beneficiary"]["creditor"]["name"], "Marie Martin");
        assert!(ca["creditTransferTransaction"][0]["requestedExecutionDate"].is_string());
        assert!(ca.get("requestedExecutionDate").is_none());
        assert_eq!(
            ca["supplementaryData"]["successfulReportUrl"],
            "https://tpp.example/ok"
        );

        // Several payees: each on its transfer, whatever the level asked for.
        let bank = banks.get("generic-1.4").unwrap();
        let r = PaymentRequestBuilder::sepa_credit_transfer("TPP")
            .transfer(transfer("A", "FR7630006000011234567890189"))
            .transfer(transfer("B", "FR7630004000031234567890143"))
            .build(&bank)
            .unwrap();
        let v = json(&r, &bank);
        assert!(v.get("beneficiary").is_none());
        assert_eq!(
            v["creditTransferTransaction"][1]["beneficiary"]["creditor"]["name"],
            "B"
        );
        assert_eq!(v["numberOfTransactions"], 2);
    }

    #[test]
    fn a_standing_order_is_written_in_the_banks_form() {
        let banks = BankProfiles::builtin();
        let schedule = StandingOrder {
            start: time::macros::datetime!(2030-01-05 0:00 UTC),
            end: Some(time::macros::datetime!(2030-12-05 0:00 UTC)),
            frequency: FrequencyCode::Mnth,
            execution_rule: ExecutionRule::Fwng,
        };
        let build = |bank: &BankProfile| {
            let r = PaymentRequestBuilder::standing_order("TPP", schedule.clone())
                .transfer(transfer("Marie Martin", "FR7630006000011234567890189"))
                .build(bank)
                .unwrap();
            json(&r, bank)
        };
        let v15 = build(&banks.get("generic-1.5").unwrap());
        let t = &v15["creditTransferTransaction"][0];
        assert_eq!(t["standingOrderCharacteristics"]["frequency"], "MNTH");
        assert_eq!(
            t["requestedExecutionDate"],
            t["standingOrderCharacteristics"]["startDate"]
        );
        assert!(t.get("frequency").is_none());
        let v14 = build(&banks.get("generic-1.4").unwrap());
        let t = &v14["creditTransferTransaction"][0];
        assert!(t.get("standingOrderCharacteristics").is_none());
        assert_eq!(t["frequency"], "MNTH");
        assert_eq!(t["executionRule"], "FWNG");
        assert!(t["endDate"].as_str().unwrap().starts_with("2030-12-05"));
        // The first execution is the transfer's own date, never the request's.
        assert!(
            t["requestedExecutionDate"]
                .as_str()
                .unwrap()
                .starts_with("2030-01-05")
        );
        assert!(v14.get("requestedExecutionDate").is_none());
    }

    #[test]
    fn a_bank_that_requires_report_urls_gets_none_without_them() {
        let ca = BankProfiles::builtin().get("credit-agricole").unwrap();
        let err = PaymentRequestBuilder::sepa_credit_transfer("TPP")
            .transfer(transfer("Marie Martin", "FR7630006000011234567890189"))
            .build(&ca)
            .unwrap_err()
            .to_string();
        assert!(err.contains("successfulReportUrl"), "{err}");
    }

    #[test]
    fn ids_from_locations() {
        assert_eq!(
            id_from_location("https://b.example/stet/psd2/v1.5/payment-requests/PR000001")
                .as_deref(),
            Some("PR000001")
        );
        assert_eq!(
            id_from_location("/v1/payment-requests/A%20B/").as_deref(),
            Some("A B")
        );
        assert_eq!(id_from_location("").as_deref(), None);
    }
}
