//! A small ext4 filesystem of one test's own: an image file under /var/tmp, attached to a loop
//! device and mounted, so a build can fill it up without touching the machine's disk. Unmounted,
//! detached and deleted on drop, also when the test failed.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LoopFs {
    /// Where the filesystem is mounted.
    pub mount_point: PathBuf,
    /// Holds the image file and the mount point.
    dir: PathBuf,
    device: Option<String>,
    mounted: bool,
}

impl LoopFs {
    /// A fresh `size_mib` MiB ext4 (no blocks reserved for root, so "full" means full for the
    /// daemons too), mounted under /var/tmp for `test`.
    pub fn new(test: &str, size_mib: u64) -> LoopFs {
        let dir = PathBuf::from(format!(
            "/var/tmp/nodekit-loop-{test}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut fs = LoopFs {
            mount_point: dir.join("mnt"),
            dir,
            device: None,
            mounted: false,
        };
        std::fs::create_dir_all(&fs.mount_point).expect("the loop filesystem's directory");
        let image = fs.dir.join("fs.img");
        let file = std::fs::File::create(&image).expect("the filesystem image");
        file.set_len(size_mib << 20)
            .expect("sizing the filesystem image");
        run("mkfs.ext4", &["-q", "-F", "-m", "0", path(&image)]);
        let device = run("losetup", &["--find", "--show", path(&image)]);
        fs.device = Some(device.trim().to_string());
        run("mount", &[device.trim(), path(&fs.mount_point)]);
        fs.mounted = true;
        fs
    }

    /// Fills the filesystem up to its last block with a file of zeros (named `name`, at its
    /// root), as a runaway log would; returns its path. Delete it to free the space.
    pub fn fill(&self, name: &str) -> PathBuf {
        use std::io::Write;
        let path = self.mount_point.join(name);
        let mut file = std::fs::File::create(&path).expect("the filler file");
        for chunk in [1 << 20, 4 << 10, 1 << 10] {
            let zeros = vec![0u8; chunk];
            while file.write_all(&zeros).is_ok() {}
        }
        let _ = file.sync_all();
        path
    }

    /// Bytes free for a file there now (statvfs, as `df` counts).
    pub fn available(&self) -> u64 {
        let stat = nix::sys::statvfs::statvfs(&self.mount_point).expect("statvfs");
        stat.blocks_available() as u64 * stat.fragment_size() as u64
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted {
            let unmounted = Command::new("umount").arg(&self.mount_point).status();
            if !unmounted.is_ok_and(|s| s.success()) {
                // Something still holds it (a process the test left): detach it anyway, so
                // the device can go once that ends.
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&self.mount_point)
                    .status();
            }
        }
        if let Some(device) = &self.device {
            if !Command::new("losetup")
                .args(["-d", device])
                .status()
                .is_ok_and(|s| s.success())
            {
                eprintln!("loop device {device} was not detached");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Runs `program` with `args`; its stdout, or a panic with what it said.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
