//! The host's binfmt_misc handlers, as the kernel lists them under /proc/sys/fs/binfmt_misc:
//! one file per handler with its state, interpreter, flags and magic.

use std::path::{Path, PathBuf};

/// The binfmt_misc mount of the host.
pub const BINFMT_MISC: &str = "/proc/sys/fs/binfmt_misc";

/// One registered handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    pub name: String,
    pub enabled: bool,
    pub interpreter: PathBuf,
    /// The kernel's flag letters (P, O, C, F).
    pub flags: String,
    pub offset: usize,
    pub magic: Vec<u8>,
    pub mask: Vec<u8>,
}

impl Handler {
    /// Whether the kernel opened the interpreter at registration (flag F): only then does it
    /// work inside a container, whose mount namespace does not have the interpreter's path.
    pub fn fixed_binary(&self) -> bool {
        self.flags.contains('F')
    }

    /// Whether this handler would run a file starting with `header`.
    pub fn matches(&self, header: &[u8]) -> bool {
        if self.magic.is_empty() {
            return false;
        }
        let Some(window) = header.get(self.offset..self.offset + self.magic.len()) else {
            return false;
        };
        window.iter().enumerate().all(|(i, byte)| {
            let mask = self.mask.get(i).copied().unwrap_or(0xff);
            byte & mask == self.magic[i] & mask
        })
    }
}

/// Every magic-based handler under `dir`; none when binfmt_misc is not mounted there.
pub fn read_handlers(dir: &Path) -> Vec<Handler> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "register" || name == "status" {
                return None;
            }
            let text = std::fs::read_to_string(entry.path()).ok()?;
            parse_handler(&name, &text)
        })
        .collect()
}

/// Parses one handler file; extension-based handlers (no magic) are skipped.
pub fn parse_handler(name: &str, text: &str) -> Option<Handler> {
    let mut lines = text.lines();
    let enabled = lines.next()? == "enabled";
    let mut handler = Handler {
        name: name.to_string(),
        enabled,
        interpreter: PathBuf::new(),
        flags: String::new(),
        offset: 0,
        magic: Vec::new(),
        mask: Vec::new(),
    };
    for line in lines {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "interpreter" => handler.interpreter = PathBuf::from(value),
            "flags:" => handler.flags = value.trim().to_string(),
            "offset" => handler.offset = value.trim().parse().ok()?,
            "magic" => handler.magic = hex::decode(value.trim()).ok()?,
            "mask" => handler.mask = hex::decode(value.trim()).ok()?,
            _ => {}
        }
    }
    (!handler.magic.is_empty()).then_some(handler)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AARCH64: &str = "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\nmask ffffffffffffff00fffffffffffffffffeffffff\n";

    #[test]
    fn a_qemu_handler_is_read_whole() {
        let handler = parse_handler("qemu-aarch64", AARCH64).unwrap();
        assert!(handler.enabled && handler.fixed_binary());
        assert_eq!(
            handler.interpreter,
            PathBuf::from("/usr/libexec/qemu-binfmt/aarch64-binfmt-P")
        );
        assert_eq!(handler.magic.len(), 20);
        assert_eq!(handler.mask[7], 0);
    }

    #[test]
    fn extension_handlers_and_disabled_state_are_understood() {
        let jar = "enabled\ninterpreter /usr/bin/jexec\nflags: \nextension .jar\n";
        assert_eq!(parse_handler("jar", jar), None);
        let disabled = AARCH64.replacen("enabled", "disabled", 1);
        let handler = parse_handler("qemu-aarch64", &disabled).unwrap();
        assert!(!handler.enabled);
        let no_f = AARCH64.replace("flags: PF", "flags: P");
        assert!(!parse_handler("x", &no_f).unwrap().fixed_binary());
    }

    #[test]
    fn magic_is_compared_under_the_mask() {
        let handler = parse_handler("qemu-aarch64", AARCH64).unwrap();
        let mut header = handler.magic.clone();
        header[7] = 9; // OS ABI: masked out
        header[16] = 3; // ET_DYN: the mask's 0xfe lets it through
        assert!(handler.matches(&header));
        header[18] = 0x3e; // x86-64
        assert!(!handler.matches(&header));
        assert!(!handler.matches(&header[..10]));
    }

    #[test]
    fn handlers_are_listed_from_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("qemu-aarch64"), AARCH64).unwrap();
        std::fs::write(dir.path().join("status"), "enabled\n").unwrap();
        std::fs::write(dir.path().join("register"), "").unwrap();
        let handlers = read_handlers(dir.path());
        assert_eq!(handlers.len(), 1);
        assert!(read_handlers(Path::new("/nonexistent/binfmt_misc")).is_empty());
    }
}
