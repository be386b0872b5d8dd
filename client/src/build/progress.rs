//! Plain progress output in the spirit of `buildctl --progress plain`: a line when a step
//! starts, its output lines, and a line when it ends.

use std::collections::HashMap;
use std::io::Write;

use nodekit_proto::moby::buildkit::v1::StatusResponse;

#[derive(Default)]
pub struct PlainProgress {
    /// Step numbers in order of first appearance.
    numbers: HashMap<String, usize>,
    announced: HashMap<String, bool>,
}

impl PlainProgress {
    pub fn print(&mut self, update: &StatusResponse, out: &mut impl Write) {
        for vertex in &update.vertexes {
            let number = self.number(&vertex.digest);
            if vertex.started.is_some()
                && !self.announced.get(&vertex.digest).copied().unwrap_or(false)
            {
                self.announced.insert(vertex.digest.clone(), true);
                let _ = writeln!(out, "#{number} {}", vertex.name);
            }
            if !vertex.error.is_empty() {
                let _ = writeln!(out, "#{number} ERROR: {}", vertex.error);
            } else if vertex.cached {
                let _ = writeln!(out, "#{number} CACHED");
            } else if vertex.completed.is_some() {
                let _ = writeln!(out, "#{number} DONE");
            }
        }
        for log in &update.logs {
            let number = self.number(&log.vertex);
            for line in String::from_utf8_lossy(&log.msg).lines() {
                let _ = writeln!(out, "#{number} {line}");
            }
        }
        for status in update.statuses.iter().filter(|s| s.completed.is_some()) {
            let number = self.number(&status.vertex);
            let _ = writeln!(out, "#{number} {}", status.name);
        }
        for warning in &update.warnings {
            let _ = writeln!(out, "WARNING: {}", String::from_utf8_lossy(&warning.short));
        }
    }

    fn number(&mut self, digest: &str) -> usize {
        let next = self.numbers.len() + 1;
        *self.numbers.entry(digest.to_string()).or_insert(next)
    }
}
