//! A containerd namespace of one test's own: a node that never saw an image, where what a build
//! pushed is pulled and run as another node would. Emptied (containers, images, leases, content,
//! snapshots) and removed when dropped; a cleanup that fails fails the test.

use std::process::Output;

use crate::{ctr_in, run_in_namespace, TestEnv};

pub struct ScratchNamespace {
    pub name: String,
}

impl ScratchNamespace {
    pub fn new(test: &str) -> ScratchNamespace {
        ScratchNamespace {
            name: format!("nodekit-test-{test}-{}", std::process::id()),
        }
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        ctr_in(TestEnv::get(), &self.name, args)
    }

    /// `ctr images pull` of `reference` (unpacked for the host) with `options` (TLS, user).
    pub fn pull(&self, reference: &str, options: &[&str]) {
        let mut args = vec!["images", "pull"];
        args.extend_from_slice(options);
        args.push(reference);
        self.ok(&args).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Output of `cmd` (the image's own command when empty) in a container of `image` here.
    pub fn run(&self, image: &str, cmd: &[&str]) -> String {
        run_in_namespace(&self.name, image, None, cmd)
    }

    /// The first column of `ctr <object> ls` (its ids, names or digests).
    fn ids(&self, object: &str) -> Result<Vec<String>, String> {
        let listing = self.ok(&[object, "ls", "-q"])?;
        Ok(listing.lines().map(str::to_string).collect())
    }

    /// `ctr` with `args` here; its stdout, or what it said on failure.
    fn ok(&self, args: &[&str]) -> Result<String, String> {
        let output = self.ctr(args);
        if !output.status.success() {
            return Err(format!(
                "ctr -n {} {args:?}: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Everything in the namespace, removed; then the namespace.
    fn remove(&self) -> Result<(), String> {
        for id in self.ids("containers")? {
            // A test that failed mid-run can leave a task behind.
            self.ctr(&["tasks", "kill", "-s", "SIGKILL", &id]);
            self.ctr(&["tasks", "rm", "-f", &id]);
            self.ok(&["containers", "rm", &id])?;
        }
        self.remove_all(&["images", "rm", "--sync"], self.ids("images")?)?;
        for lease in self.ids("leases")? {
            // Synchronously: the collector is done with what the lease held when it returns.
            self.ok(&["leases", "rm", "--sync", &lease])?;
        }
        self.remove_snapshots()?;
        self.remove_all(&["content", "rm"], self.ids("content")?)?;
        self.ok(&["namespaces", "rm", &self.name]).map(drop)
    }

    /// `ctr <command> <ids...>`, unless there are none.
    fn remove_all(&self, command: &[&str], ids: Vec<String>) -> Result<(), String> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = command.to_vec();
        args.extend(ids.iter().map(String::as_str));
        self.ok(&args).map(drop)
    }

    /// The snapshots the collector left, children before their parents.
    fn remove_snapshots(&self) -> Result<(), String> {
        let mut stuck_passes = 0;
        loop {
            let listing = self.ok(&["snapshots", "ls"])?;
            // KEY PARENT KIND, under a header line; a snapshot without a parent has two.
            let rows: Vec<Vec<&str>> = listing
                .lines()
                .skip(1)
                .map(|l| l.split_whitespace().collect())
                .collect();
            if rows.is_empty() {
                return Ok(());
            }
            let is_parent = |key: &str| rows.iter().any(|r| r.len() == 3 && r[1] == key);
            // The collector removes a snapshot from the namespace's list before the snapshotter
            // forgets it as a parent, so a parent can stay "with child" a moment longer: only
            // passes that remove nothing for a few seconds fail.
            let mut failures = Vec::new();
            let leaves: Vec<&Vec<&str>> = rows.iter().filter(|r| !is_parent(r[0])).collect();
            for row in &leaves {
                if let Err(error) = self.ok(&["snapshots", "rm", row[0]]) {
                    failures.push(error);
                }
            }
            if failures.is_empty() || failures.len() < leaves.len() {
                stuck_passes = 0;
                continue;
            }
            stuck_passes += 1;
            if stuck_passes == 20 {
                return Err(failures.join("; "));
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    }
}

impl Drop for ScratchNamespace {
    fn drop(&mut self) {
        let removed = self.remove();
        match removed {
            Err(error) if std::thread::panicking() => {
                eprintln!("namespace {} is left behind: {error}", self.name);
            }
            Err(error) => panic!("namespace {} is left behind: {error}", self.name),
            Ok(()) => {}
        }
    }
}
