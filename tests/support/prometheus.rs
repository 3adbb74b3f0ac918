//! A real Prometheus server for the tests (Debian's package, installed by
//! scripts/test.sh): started on a free 127.0.0.1 port, scraping one target
//! every second, optionally with rule files, killed on drop.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{http_get, url_encode};

/// A running Prometheus.
pub struct Prometheus {
    /// `127.0.0.1:PORT` of its HTTP API.
    pub addr: String,
    child: Child,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `name` on the PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) every second under
    /// `dir` (a fresh directory), with `rules` as rule files. `None` when the
    /// binary is not installed: the caller prints why it skips.
    pub fn start(target: &str, dir: &Path, rules: &[&Path]) -> Option<Prometheus> {
        let binary = which("prometheus")?;
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("prometheus dir");
        let config = dir.join("prometheus.yml");
        let mut text = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if !rules.is_empty() {
            text.push_str("rule_files:\n");
            for r in rules {
                text.push_str(&format!("  - '{}'\n", r.display()));
            }
        }
        text.push_str(&format!(
            "scrape_configs:\n  - job_name: observra\n    scrape_interval: 1s\n    static_configs:\n      - targets: ['{target}']\n"
        ));
        std::fs::write(&config, text).expect("prometheus config");
        // A free port can be taken by someone else before Prometheus binds
        // it: then Prometheus exits, and it is started again on another port.
        for _ in 0..5 {
            let addr = format!("127.0.0.1:{}", free_port());
            let mut child = Command::new(&binary)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus");
            let ready = Instant::now() + Duration::from_secs(60);
            loop {
                if matches!(http_get(&addr, "/-/ready"), Ok((200, _))) {
                    return Some(Prometheus { addr, child, dir: dir.to_path_buf() });
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > ready {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("Prometheus came up on none of five ports");
    }

    /// The result of an instant query (empty on any error).
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let Ok((200, body)) = http_get(&self.addr, &format!("/api/v1/query?query={}", url_encode(q))) else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }
}

impl Prometheus {
    /// The series of a range query over the last `seconds`, one point a
    /// second: each series' labels and its finite `(unix seconds, value)`
    /// points (empty on any error).
    pub fn query_range(&self, q: &str, seconds: u64) -> Vec<(serde_json::Value, Vec<(f64, f64)>)> {
        // Whole seconds, rounded up: the last point is at or after now, so a
        // series an instant query sees now is in the range too.
        let end =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() + 1).unwrap_or(0);
        let path = format!(
            "/api/v1/query_range?query={}&start={}&end={end}&step=1",
            url_encode(q),
            end.saturating_sub(seconds)
        );
        let Ok((200, body)) = http_get(&self.addr, &path) else { return Vec::new() };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let series = v["data"]["result"].as_array().cloned().unwrap_or_default();
        series
            .into_iter()
            .map(|s| {
                let points = s["values"]
                    .as_array()
                    .map(|vs| {
                        vs.iter()
                            .filter_map(|p| {
                                let t = p[0].as_f64()?;
                                let v: f64 = p[1].as_str()?.parse().ok()?;
                                v.is_finite().then_some((t, v))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                (s["metric"].clone(), points)
            })
            .collect()
    }
}

/// A query result sample's value.
pub fn value(sample: &serde_json::Value) -> f64 {
    sample["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN)
}
