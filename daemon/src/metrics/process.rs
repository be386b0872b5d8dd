//! The process's own figures, read from /proc at each scrape: resident memory, CPU time and
//! open file descriptors (the names Prometheus' client libraries use, under `nodekit_`), and
//! the tasks alive on the tokio runtime serving the scrape (a leaked task shows there first).

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

pub fn encode(encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if let Some(bytes) = resident_bytes() {
        let metric = ConstGauge::new(bytes as i64);
        metric.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory of nodekitd.",
            None,
            metric.metric_type(),
        )?)?;
    }
    if let Some(seconds) = cpu_seconds() {
        let metric = ConstCounter::new(seconds);
        metric.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time nodekitd has used.",
            None,
            metric.metric_type(),
        )?)?;
    }
    if let Some(count) = open_fds() {
        let metric = ConstGauge::new(count as i64);
        metric.encode(encoder.encode_descriptor(
            "process_open_fds",
            "File descriptors nodekitd has open.",
            None,
            metric.metric_type(),
        )?)?;
    }
    if let Some(count) = alive_tasks() {
        let metric = ConstGauge::new(count as i64);
        metric.encode(encoder.encode_descriptor(
            "tokio_alive_tasks",
            "Tasks alive on nodekitd's tokio runtime (spawned, not yet finished).",
            None,
            metric.metric_type(),
        )?)?;
    }
    Ok(())
}

/// The runtime the scrape runs on: nodekitd has one.
fn alive_tasks() -> Option<usize> {
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    Some(runtime.metrics().num_alive_tasks())
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|v| u64::try_from(v).ok())
        .unwrap_or(4096)
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// utime + stime of /proc/self/stat (fields 14 and 15, after the command in parentheses).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_command = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_command.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&t| t > 0)
        .unwrap_or(100);
    Some(ticks as f64 / per_second as f64)
}

fn open_fds() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_process_figures_are_read() {
        assert!(resident_bytes().is_some_and(|b| b > 1024 * 1024));
        assert!(cpu_seconds().is_some_and(|s| s >= 0.0));
        assert!(open_fds().is_some_and(|n| n >= 3));
        assert_eq!(alive_tasks(), None, "no runtime here");
    }

    #[tokio::test]
    async fn a_pending_task_is_counted_until_it_ends() {
        let before = alive_tasks().expect("on a runtime");
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move { drop(released.await) });
        assert_eq!(alive_tasks(), Some(before + 1));
        drop(release);
        task.await.expect("the task ends");
        assert_eq!(alive_tasks(), Some(before));
    }
}
