//! HTTP client of the console API, used by `edge-fleet rollout …` (and by the tests).

use reqwest::StatusCode;

use super::ConsoleError;
use super::rollout::{Rollout, RolloutSpec};

pub struct Client {
    base: String,
    user: String,
    password: String,
    http: reqwest::Client,
}

fn http(e: reqwest::Error) -> ConsoleError {
    ConsoleError::Http(e.to_string())
}

impl Client {
    /// `base` like `http://127.0.0.1:8080`.
    pub fn new(base: &str, user: &str, password: &str) -> Result<Client, ConsoleError> {
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            user: user.into(),
            password: password.into(),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .map_err(http)?,
        })
    }

    async fn send<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ConsoleError> {
        let r = req
            .basic_auth(&self.user, Some(&self.password))
            .send()
            .await
            .map_err(http)?;
        let status = r.status();
        let body = r.bytes().await.map_err(http)?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(ConsoleError::Http(match status {
                StatusCode::UNAUTHORIZED => "401: wrong user or password".into(),
                s => format!("{s}: {msg}"),
            }));
        }
        serde_json::from_slice(&body).map_err(|e| ConsoleError::Http(format!("answer: {e}")))
    }

    pub async fn start(&self, spec: &RolloutSpec) -> Result<Rollout, ConsoleError> {
        let url = format!("{}/api/rollouts", self.base);
        self.send(self.http.post(url).json(spec)).await
    }

    pub async fn list(&self) -> Result<Vec<Rollout>, ConsoleError> {
        self.send(self.http.get(format!("{}/api/rollouts", self.base)))
            .await
    }

    pub async fn get(&self, id: &str) -> Result<Rollout, ConsoleError> {
        self.send(self.http.get(format!("{}/api/rollouts/{id}", self.base)))
            .await
    }

    /// `pause`, `resume`, `abort` or `rollback`.
    pub async fn act(&self, id: &str, action: &str) -> Result<Rollout, ConsoleError> {
        self.send(
            self.http
                .post(format!("{}/api/rollouts/{id}/{action}", self.base))
                .json(&serde_json::json!({})),
        )
        .await
    }

    pub async fn devices(&self) -> Result<Vec<serde_json::Value>, ConsoleError> {
        self.send(self.http.get(format!("{}/api/devices", self.base)))
            .await
    }
}
