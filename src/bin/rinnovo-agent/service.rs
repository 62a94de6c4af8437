//! The service's agent API (README, "Agent API"), as this agent calls it.

use serde_json::{json, Value};

/// The service said no: its problem document, and what it means for the holder.
#[derive(Debug, thiserror::Error)]
#[error("{}", explain(.problem_type, .detail))]
pub struct Refused {
    pub status: u16,
    pub problem_type: String,
    pub detail: String,
}

/// The problem types a holder can act on, said plainly; the service's own detail after.
fn explain(problem_type: &str, detail: &str) -> String {
    let slug = problem_type.rsplit('/').next().unwrap_or_default();
    let advice = match slug {
        "coupon-wrong-kind" => "the coupon is for another kind of certificate",
        "coupon-not-available" => "the coupon has already been used",
        "unknown-coupon" => "no coupon has this code: check it in the email",
        "coupon-expired" => "the coupon has expired",
        "coupon-other-brand" => "the coupon was bought from another brand",
        "outside-renewal-window" => "the renewal window is not open",
        "renewal-pending" => "a renewal is already under way: run `rinnovo-agent resume`",
        "signature-certificate-sign-in" => {
            "the service refuses the signature certificate for sign-in"
        }
        "certificate-not-active" => "the certificate is revoked or already replaced",
        _ => "the service refused",
    };
    format!("{advice} ({detail})")
}

pub struct Service {
    http: reqwest::Client,
    /// `https://host/api/v1`
    base: String,
    token: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot reach the service: {0}")]
    Network(#[from] reqwest::Error),
}

pub struct Renewal {
    pub status: String,
    pub retry_after_seconds: Option<u64>,
}

impl Service {
    pub fn new(server: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: format!("{}/api/v1", server.trim_end_matches('/')),
            token: None,
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, ServiceError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().await?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let problem: Value = response.json().await.unwrap_or(Value::Null);
        Err(Refused {
            status,
            problem_type: problem["type"].as_str().unwrap_or("about:blank").to_owned(),
            detail: problem["detail"]
                .as_str()
                .unwrap_or("no details given")
                .to_owned(),
        }
        .into())
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, ServiceError> {
        Ok(self.send(request).await?.json().await?)
    }

    pub async fn challenge(&self) -> Result<String, ServiceError> {
        let body = self
            .json(self.http.post(format!("{}/agent/challenges", self.base)))
            .await?;
        Ok(body["nonce"].as_str().unwrap_or_default().to_owned())
    }

    /// Signs in; later calls carry the agent token.
    pub async fn sign_in(
        &mut self,
        certificate_pem: &str,
        nonce: &str,
        signature_base64: &str,
    ) -> Result<(), ServiceError> {
        let body = self
            .json(
                self.http
                    .post(format!("{}/agent/sessions", self.base))
                    .json(&json!({
                        "certificate": certificate_pem,
                        "nonce": nonce,
                        "signature": signature_base64,
                    })),
            )
            .await?;
        self.token = body["token"].as_str().map(str::to_owned);
        Ok(())
    }

    pub async fn certificates(&self) -> Result<Value, ServiceError> {
        self.json(self.http.get(format!("{}/agent/certificates", self.base)))
            .await
    }

    pub async fn request_renewals(&self, renewals: Vec<Value>) -> Result<Value, ServiceError> {
        self.json(
            self.http
                .post(format!("{}/agent/renewals", self.base))
                .json(&json!({ "renewals": renewals })),
        )
        .await
    }

    pub async fn renewal(&self, id: &str) -> Result<Renewal, ServiceError> {
        let response = self
            .send(self.http.get(format!("{}/agent/renewals/{id}", self.base)))
            .await?;
        let retry_after_seconds = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body: Value = response.json().await?;
        Ok(Renewal {
            status: body["status"].as_str().unwrap_or_default().to_owned(),
            retry_after_seconds,
        })
    }

    /// The new certificate, then the issuing CA's and the root's, as PEM.
    pub async fn chain(&self, id: &str) -> Result<String, ServiceError> {
        Ok(self
            .send(
                self.http
                    .get(format!("{}/agent/renewals/{id}", self.base))
                    .header(reqwest::header::ACCEPT, "application/pem-certificate-chain"),
            )
            .await?
            .text()
            .await?)
    }

    pub async fn installed(&self, id: &str) -> Result<(), ServiceError> {
        self.send(
            self.http
                .post(format!("{}/agent/renewals/{id}/installed", self.base)),
        )
        .await?;
        Ok(())
    }
}
