//! Captures the registry's tracing output so tests can check that refusals
//! are logged with their reason.

#![allow(dead_code)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

static LOGS: OnceLock<Buffer> = OnceLock::new();

/// Installs the capturing subscriber (once per test binary).
pub fn capture() {
    LOGS.get_or_init(|| {
        let buf = Buffer::default();
        let writer = buf.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .init();
        buf
    });
}

/// Waits briefly (the server logs on its own task) for a line holding
/// every one of `parts`, and returns it.
pub async fn wait_for(parts: &[&str]) -> Option<String> {
    for _ in 0..100 {
        if let Some(buf) = LOGS.get() {
            let text = String::from_utf8_lossy(&buf.0.lock().expect("log buffer")).into_owned();
            if let Some(line) = text.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return Some(line.to_string());
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    None
}
