//! [`Operation`]: the fourteen STET operations as data, generated from `openapi/`.

/// One operation of the STET API, as the spec in `openapi/` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The spec's `operationId`, e.g. `accountsTransactionsGet`.
    pub operation_id: &'static str,
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template relative to the bank's base URL, e.g. `/accounts/{accountResourceId}/balances`.
    pub path: &'static str,
    /// The TPP role: `AISP`, `PISP` or `CBPII` (PIISP in 1.4).
    pub role: &'static str,
    /// What the operation does.
    pub summary: &'static str,
    /// Schema of the request body, if any.
    pub request_body: Option<&'static str>,
    /// Success status code.
    pub success_status: u16,
    /// Schema of the success response body, if any.
    pub response_body: Option<&'static str>,
    /// The STET version that introduced the operation, when after 1.4.
    pub since: Option<&'static str>,
}
