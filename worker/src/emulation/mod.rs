//! Running steps of a foreign platform: through the host's binfmt_misc handler when one with
//! the F flag is registered (it works inside containers), else through a static qemu that
//! nodekit bind-mounts into the container and puts in front of the command.

mod arch;
mod binfmt;
mod bundled;

use std::path::{Path, PathBuf};

pub use arch::Arch;
pub use binfmt::{read_handlers, Handler, BINFMT_MISC};
pub use bundled::{prefix_command, resolve_program, stage_emulator, QEMU_MOUNT};

use nodekit_oci::Platform;

/// Where Debian's qemu-user-static installs its emulators.
pub const DEFAULT_QEMU_DIR: &str = "/usr/bin";

/// Where emulators come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Emulation {
    pub binfmt_dir: PathBuf,
    /// The directory of static qemu binaries (`qemu-aarch64-static`, ...).
    pub qemu_dir: PathBuf,
}

impl Default for Emulation {
    fn default() -> Self {
        Emulation {
            binfmt_dir: BINFMT_MISC.into(),
            qemu_dir: DEFAULT_QEMU_DIR.into(),
        }
    }
}

/// How a foreign step runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Emulator {
    /// The kernel hands the step's binaries to a registered handler itself.
    Kernel { handler: String },
    /// A static qemu from the qemu directory runs the command.
    Bundled { qemu: PathBuf },
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot run a {platform} step on this {native} node: {reason}")]
pub struct NoEmulator {
    pub platform: String,
    pub native: String,
    pub reason: String,
}

impl Emulation {
    /// How steps of `platform` run: None natively, else through an emulator. Read afresh each
    /// time: handlers may be registered or disabled while the daemon runs.
    pub fn emulator_for(&self, platform: &Platform) -> Result<Option<Emulator>, NoEmulator> {
        let native = Platform::native();
        let no_emulator = |reason: String| NoEmulator {
            platform: platform.to_string(),
            native: native.to_string(),
            reason,
        };
        if platform.os != "linux" {
            return Err(no_emulator(format!(
                "only linux steps can run here, not {}",
                platform.os
            )));
        }
        if platform.architecture == native.architecture {
            return Ok(None);
        }
        let Some(arch) = Arch::of(platform) else {
            return Err(no_emulator(format!(
                "nodekit knows no emulator for the {} architecture",
                platform.architecture
            )));
        };
        if let Some(handler) = self.kernel_handler(&arch) {
            return Ok(Some(Emulator::Kernel {
                handler: handler.name,
            }));
        }
        match self.bundled_qemu(&arch) {
            Some(qemu) => Ok(Some(Emulator::Bundled { qemu })),
            None => Err(no_emulator(format!(
                "no binfmt_misc handler with the F flag is registered for {} and there is no \
                 qemu-{}-static in {}; install qemu-user-static (apt-get install qemu-user-static \
                 binfmt-support) or point qemu-dir at a directory holding qemu-{}-static",
                arch.qemu,
                arch.qemu,
                self.qemu_dir.display(),
                arch.qemu
            ))),
        }
    }

    /// The platforms steps can run for: the node's, then every emulated one.
    pub fn runnable_platforms(&self) -> Vec<Platform> {
        let native = Platform::native();
        let handlers = read_handlers(&self.binfmt_dir);
        let emulated = arch::ARCHES
            .iter()
            .filter(|a| a.oci != native.architecture)
            .filter(|a| kernel_handler_in(&handlers, a).is_some() || self.bundled_qemu(a).is_some())
            .map(Arch::platform)
            .collect::<Vec<_>>();
        std::iter::once(native).chain(emulated).collect()
    }

    fn kernel_handler(&self, arch: &Arch) -> Option<Handler> {
        kernel_handler_in(&read_handlers(&self.binfmt_dir), arch)
    }

    /// The static qemu for `arch` in the qemu directory, if there is one.
    fn bundled_qemu(&self, arch: &Arch) -> Option<PathBuf> {
        // BuildKit's own build first: it also runs the foreign programs a step starts.
        let names = [
            format!("buildkit-qemu-{}", arch.qemu),
            format!("qemu-{}-static", arch.qemu),
        ];
        names
            .iter()
            .map(|name| self.qemu_dir.join(name))
            .find(|path| is_executable(path))
    }
}

/// An enabled handler with the F flag that runs executables of `arch`.
fn kernel_handler_in(handlers: &[Handler], arch: &Arch) -> Option<Handler> {
    let header = arch.elf_header();
    handlers
        .iter()
        .find(|h| h.enabled && h.fixed_binary() && h.matches(&header))
        .cloned()
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const AARCH64_MAGIC: &str = "magic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    struct Fixture {
        _dir: tempfile::TempDir,
        emulation: Emulation,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let emulation = Emulation {
            binfmt_dir: dir.path().join("binfmt"),
            qemu_dir: dir.path().join("qemu"),
        };
        std::fs::create_dir_all(&emulation.binfmt_dir).unwrap();
        std::fs::create_dir_all(&emulation.qemu_dir).unwrap();
        Fixture {
            _dir: dir,
            emulation,
        }
    }

    impl Fixture {
        fn handler(&self, name: &str, state: &str, flags: &str) {
            let text = format!(
                "{state}\ninterpreter /usr/bin/qemu-aarch64-static\nflags: {flags}\noffset 0\n{AARCH64_MAGIC}"
            );
            std::fs::write(self.emulation.binfmt_dir.join(name), text).unwrap();
        }

        fn qemu(&self, name: &str) {
            let path = self.emulation.qemu_dir.join(name);
            std::fs::write(&path, b"qemu").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    fn arm64() -> Platform {
        Platform::parse("linux/arm64").unwrap()
    }

    fn skip_on_arm64() -> bool {
        Platform::native().architecture == "arm64"
    }

    #[test]
    fn native_steps_need_no_emulator() {
        let f = fixture();
        assert_eq!(f.emulation.emulator_for(&Platform::native()), Ok(None));
    }

    #[test]
    fn a_handler_with_the_f_flag_is_used_whatever_its_name() {
        if skip_on_arm64() {
            return;
        }
        let f = fixture();
        f.handler("my-arm64", "enabled", "PF");
        f.qemu("qemu-aarch64-static");
        let emulator = f.emulation.emulator_for(&arm64()).unwrap();
        assert_eq!(
            emulator,
            Some(Emulator::Kernel {
                handler: "my-arm64".into()
            })
        );
    }

    #[test]
    fn disabled_or_non_fixed_handlers_fall_back_to_the_bundled_qemu() {
        if skip_on_arm64() {
            return;
        }
        let f = fixture();
        f.handler("qemu-aarch64", "disabled", "PF");
        f.handler("other", "enabled", "P");
        f.qemu("qemu-aarch64-static");
        let qemu = f.emulation.qemu_dir.join("qemu-aarch64-static");
        assert_eq!(
            f.emulation.emulator_for(&arm64()),
            Ok(Some(Emulator::Bundled { qemu }))
        );
    }

    #[test]
    fn without_any_emulator_the_error_says_what_to_install() {
        if skip_on_arm64() {
            return;
        }
        let f = fixture();
        let error = f.emulation.emulator_for(&arm64()).unwrap_err().to_string();
        assert!(error.contains("linux/arm64"), "{error}");
        assert!(error.contains("qemu-aarch64-static"), "{error}");
        assert!(
            error.contains("apt-get install qemu-user-static"),
            "{error}"
        );
        let windows = Platform::parse("windows/amd64").unwrap();
        assert!(f.emulation.emulator_for(&windows).is_err());
    }

    #[test]
    fn runnable_platforms_list_the_native_one_first() {
        if skip_on_arm64() {
            return;
        }
        let f = fixture();
        assert_eq!(f.emulation.runnable_platforms(), vec![Platform::native()]);
        f.handler("qemu-aarch64", "enabled", "F");
        f.qemu("qemu-riscv64-static");
        let names: Vec<String> = f
            .emulation
            .runnable_platforms()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(names[1..], ["linux/arm64", "linux/riscv64"]);
    }
}
