//! Real third-party peers started by the tests (Node and Python scripts in end2end/peers). Each prints "READY <url>";
//! it exits when this process closes its stdin (kill_on_drop also ends it) and after 10 minutes at most.
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Peer {
    pub url: String,
    _child: Child,
}

impl Peer {
    pub async fn start(script: &str, env: &[(&str, &str)]) -> Peer {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/end2end/peers/").to_string() + script;
        let mut cmd = Command::new(if script.ends_with(".py") { "python3" } else { "node" });
        cmd.arg(&path).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("node runs (npm ci in end2end first)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(std::time::Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("READY ") {
                    return url.trim().to_string();
                }
            }
            panic!("{script} exited before READY")
        })
        .await
        .unwrap_or_else(|_| panic!("{script} did not start within 20 s"));
        // Keep reading what the peer prints, so it never writes into a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Peer { url, _child: child }
    }

    /// POSTs JSON and returns the JSON answer.
    pub async fn call(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = reqwest::Client::new().post(format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "peer {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub async fn post(&self, path: &str, body: serde_json::Value) {
        let r = reqwest::Client::new().post(format!("{}{path}", self.url)).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "peer {path}: {}", r.status());
    }
}
