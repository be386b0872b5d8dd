//! The machine's binfmt_misc state, changed for a test and restored when the guard drops
//! (also when the test panics): handlers' enabled states, handlers the test registered, the
//! global switch, and the mount itself.

use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nodekitd::oci::Platform;
use nodekitd::worker::emulation::{read_handlers, Arch, Handler, BINFMT_MISC};

/// Tests that change binfmt_misc run one at a time.
pub static MACHINE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TEST_HANDLER: &str = "nodekit-test-aarch64";
/// qemu-aarch64's registration as Debian's qemu-user-static makes it, with the F flag (the
/// interpreter is opened now, so it works in containers) and P (argv[0] kept, which busybox
/// needs to find its applet).
const REGISTRATION: &str = concat!(
    ":nodekit-test-aarch64:M::",
    r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:",
    r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:",
    "/usr/bin/qemu-aarch64-static:PF"
);

pub struct Binfmt {
    dir: PathBuf,
    mounted_here: bool,
    status: Option<String>,
    /// Every handler found at the start, with whether it was enabled.
    found: Vec<(String, bool)>,
    registered: bool,
}

impl Binfmt {
    /// Records the machine's state, mounting binfmt_misc if it is not.
    pub fn take() -> Binfmt {
        let dir = PathBuf::from(BINFMT_MISC);
        let mounted_here = !dir.join("status").exists();
        if mounted_here {
            mount(
                Some("binfmt_misc"),
                &dir,
                Some("binfmt_misc"),
                MsFlags::empty(),
                None::<&str>,
            )
            .expect("mounting binfmt_misc");
        }
        let status = std::fs::read_to_string(dir.join("status")).ok();
        let found = read_handlers(&dir)
            .into_iter()
            .map(|h| (h.name, h.enabled))
            .collect();
        let binfmt = Binfmt {
            dir,
            mounted_here,
            status,
            found,
            registered: false,
        };
        binfmt.write("status", "1");
        binfmt
    }

    /// Makes the kernel run arm64 executables in containers (a handler with the F flag).
    pub fn enable_arm64(&mut self) {
        let usable = |h: &Handler| h.fixed_binary() && h.flags.contains('P');
        if let Some(handler) = self.arm64_handlers().into_iter().find(usable) {
            self.write(&handler.name, "1");
            return;
        }
        if !self.registered && !self.dir.join(TEST_HANDLER).exists() {
            self.write("register", REGISTRATION);
            self.registered = true;
        }
        self.write(TEST_HANDLER, "1");
    }

    /// Leaves no enabled handler for arm64 executables.
    pub fn disable_arm64(&mut self) {
        for handler in self.arm64_handlers() {
            self.write(&handler.name, "0");
        }
    }

    fn arm64_handlers(&self) -> Vec<Handler> {
        let arm64 = Arch::of(&Platform::new("linux", "arm64", None)).expect("arm64 is known");
        read_handlers(&self.dir)
            .into_iter()
            .filter(|h| h.matches(&arm64.elf_header()))
            .collect()
    }

    fn write(&self, file: &str, text: &str) {
        let path = self.dir.join(file);
        std::fs::write(&path, text)
            .unwrap_or_else(|e| panic!("writing {text:?} to {}: {e}", path.display()));
    }
}

impl Drop for Binfmt {
    fn drop(&mut self) {
        let write = |file: &str, text: &str| {
            if let Err(error) = std::fs::write(self.dir.join(file), text) {
                eprintln!("restoring binfmt_misc {file}: {error}");
            }
        };
        if self.registered {
            write(TEST_HANDLER, "-1");
        }
        for (name, enabled) in &self.found {
            write(name, if *enabled { "1" } else { "0" });
        }
        if let Some(status) = &self.status {
            write("status", if status.trim() == "enabled" { "1" } else { "0" });
        }
        if self.mounted_here {
            if let Err(error) = umount2(Path::new(&self.dir), MntFlags::MNT_DETACH) {
                eprintln!("unmounting binfmt_misc: {error}");
            }
        }
    }
}
